"""The `UserStore` contract, on both backends (the ``users`` fixture): what the console login
and `trailwarden admin user …` rely on, including the audit entry of every user change."""

from __future__ import annotations

import pytest

from tests.manager.users.conftest import Users
from trailwarden.common.errors import ConfigError, NotFoundError, StoreError
from trailwarden.manager.agents.registry import now_ms
from trailwarden.manager.console.sessions import LoginSessions, hash_session_id
from trailwarden.manager.users.base import ConsoleUser, UserRole

HOUR_MS = 3600 * 1000


def add(users: Users, name: str, role: UserRole = UserRole.VIEWER, hash_: str = "h1") -> None:
    users.store.add_user(name, role, hash_, "admin:test")


def session_for(
    users: Users, name: str, id_hash: str, *, at_ms: int = 0, ttl_ms: int = HOUR_MS
) -> int:
    at = at_ms or now_ms()
    users.store.create_session(id_hash, name, at, at + ttl_ms, "127.0.0.1")
    return at


def test_add_then_list_shows_the_user_and_audits_it(users: Users) -> None:
    before = now_ms()
    record = users.store.add_user("alice", UserRole.ADMIN, "hash-a", "admin:root")
    assert (record.name, record.role, record.created_by) == ("alice", "admin", "admin:root")
    assert record.created_ms >= before and record.password_changed_ms == record.created_ms
    add(users, "bob")
    listed = users.store.list_users()
    assert [(u.name, u.role, u.last_login_ms, u.active_sessions) for u in listed] == [
        ("alice", "admin", 0, 0),
        ("bob", "viewer", 0, 0),
    ]
    assert listed[0] == record
    assert [(e.actor, e.target, e.detail) for e in users.audit("user.add")] == [
        ("admin:root", "alice", "role=admin"),
        ("admin:test", "bob", "role=viewer"),
    ]


def test_list_orders_names_bytewise(users: Users) -> None:
    for name in ("b.x", "a-1", "a_1", "a1", "a.1", "0z"):
        add(users, name)
    assert [u.name for u in users.store.list_users()] == sorted(
        ["b.x", "a-1", "a_1", "a1", "a.1", "0z"]
    )


def test_a_duplicate_name_is_refused_and_the_first_user_kept(users: Users) -> None:
    add(users, "alice", UserRole.ADMIN, "first")
    with pytest.raises(ConfigError, match="console user 'alice' already exists"):
        users.store.add_user("alice", UserRole.VIEWER, "second", "admin:other")
    found = users.store.password_hash("alice")
    assert found == (ConsoleUser("alice", "admin"), "first")
    assert len(users.audit("user.add")) == 1


def test_password_hash_finds_the_user_or_none(users: Users) -> None:
    add(users, "alice", UserRole.ADMIN, "$argon2id$stored")
    assert users.store.password_hash("alice") == (ConsoleUser("alice", "admin"), "$argon2id$stored")
    assert users.store.password_hash("nobody") is None


def test_remove_ends_the_sessions_and_audits(users: Users) -> None:
    add(users, "alice")
    add(users, "bob")
    session_for(users, "alice", "s1")
    session_for(users, "alice", "s2")
    session_for(users, "bob", "s3")
    assert users.store.remove_user("alice", "admin:root") == 2
    assert [u.name for u in users.store.list_users()] == ["bob"]
    assert users.store.session("s1") is None and users.store.session("s2") is None
    assert users.store.session("s3") is not None
    assert users.store.password_hash("alice") is None
    assert [(e.target, e.detail) for e in users.audit("user.remove")] == [
        ("alice", "sessions_ended=2")
    ]


def test_remove_of_an_unknown_user_is_not_found_and_not_audited(users: Users) -> None:
    with pytest.raises(NotFoundError, match="no console user 'ghost'"):
        users.store.remove_user("ghost", "admin:root")
    assert users.audit("user.remove") == []


def test_passwd_replaces_the_hash_and_ends_every_session(users: Users) -> None:
    add(users, "alice", hash_="old")
    created = users.store.list_users()[0].password_changed_ms
    session_for(users, "alice", "s1")
    assert users.store.set_password_hash("alice", "new", "admin:root") == 1
    assert users.store.password_hash("alice") == (ConsoleUser("alice", "viewer"), "new")
    assert users.store.session("s1") is None
    assert users.store.list_users()[0].password_changed_ms >= created
    assert [(e.target, e.detail) for e in users.audit("user.passwd")] == [
        ("alice", "sessions_ended=1")
    ]
    with pytest.raises(NotFoundError, match="no console user 'ghost'"):
        users.store.set_password_hash("ghost", "x", "admin:root")
    assert len(users.audit("user.passwd")) == 1


def test_rehash_keeps_the_sessions_and_is_not_a_password_change(users: Users) -> None:
    add(users, "alice", hash_="weak")
    changed = users.store.list_users()[0].password_changed_ms
    session_for(users, "alice", "s1")
    users.store.rehash("alice", "strong")
    assert users.store.password_hash("alice") == (ConsoleUser("alice", "viewer"), "strong")
    assert users.store.session("s1") is not None
    assert users.store.list_users()[0].password_changed_ms == changed
    assert users.audit("user.passwd") == []
    users.store.rehash("ghost", "x")  # a user removed meanwhile: nothing to do
    assert users.store.password_hash("ghost") is None


def test_a_session_is_created_read_touched_and_deleted(users: Users) -> None:
    add(users, "alice", UserRole.ADMIN)
    at = session_for(users, "alice", "s1", at_ms=1_000_000, ttl_ms=HOUR_MS)
    stored = users.store.session("s1")
    assert stored is not None
    assert (stored.user, stored.created_ms, stored.last_used_ms, stored.expires_ms) == (
        ConsoleUser("alice", "admin"),
        at,
        at,
        at + HOUR_MS,
    )
    assert stored.address == "127.0.0.1"
    assert users.store.list_users()[0].last_login_ms == at
    users.store.touch_session("s1", at + 5000)
    touched = users.store.session("s1")
    assert touched is not None and touched.last_used_ms == at + 5000
    assert touched.created_ms == at
    users.store.delete_session("s1")
    assert users.store.session("s1") is None
    users.store.delete_session("s1")  # twice: nothing left to delete, no error
    assert users.store.session("unknown") is None


def test_list_counts_only_sessions_not_past_their_expiry(users: Users) -> None:
    add(users, "alice")
    session_for(users, "alice", "live")
    session_for(users, "alice", "over", at_ms=now_ms() - 2 * HOUR_MS)
    assert users.store.list_users()[0].active_sessions == 1


def test_expired_and_idle_sessions_are_purged(users: Users) -> None:
    add(users, "alice")
    now = now_ms()
    session_for(users, "alice", "fresh", at_ms=now)
    session_for(users, "alice", "expired", at_ms=now - 2 * HOUR_MS, ttl_ms=HOUR_MS)
    session_for(users, "alice", "idle", at_ms=now - 30 * 60_000, ttl_ms=12 * HOUR_MS)
    assert users.store.delete_expired_sessions(now, now - 10 * 60_000) == 2
    assert users.store.session("fresh") is not None
    assert users.store.session("expired") is None and users.store.session("idle") is None
    assert users.store.delete_expired_sessions(now, now - 10 * 60_000) == 0


def test_a_second_store_on_the_same_database_sees_users_and_sessions(users: Users) -> None:
    add(users, "alice", UserRole.ADMIN, "hash-a")
    session_for(users, "alice", "s1")
    other = users.reopen()
    assert other.password_hash("alice") == (ConsoleUser("alice", "admin"), "hash-a")
    assert other.session("s1") is not None
    other.delete_session("s1")
    assert users.store.session("s1") is None


def test_login_sessions_end_an_expired_session_on_either_backend(users: Users) -> None:
    add(users, "alice")
    clock = [1_000_000.0]
    sessions = LoginSessions(
        users.store, ttl_seconds=3600, idle_seconds=600, clock=lambda: clock[0]
    )
    new = sessions.start(ConsoleUser("alice", "viewer"), "127.0.0.1")
    assert sessions.resolve(new.id) == ConsoleUser("alice", "viewer")
    clock[0] += 3600
    assert sessions.resolve(new.id) is None
    assert users.store.session(hash_session_id(new.id)) is None


def test_a_change_whose_audit_entry_cannot_be_written_is_rolled_back(users: Users) -> None:
    add(users, "alice", hash_="kept")
    with users.registry.db.transaction() as tx:  # the registry's audit table is gone
        tx.execute("ALTER TABLE audit_log RENAME TO audit_log_away")
    with pytest.raises(StoreError):
        users.store.add_user("bob", UserRole.VIEWER, "h", "admin:root")
    with pytest.raises(StoreError):
        users.store.set_password_hash("alice", "changed", "admin:root")
    with pytest.raises(StoreError):
        users.store.remove_user("alice", "admin:root")
    assert [u.name for u in users.store.list_users()] == ["alice"]
    assert users.store.password_hash("alice") == (ConsoleUser("alice", "viewer"), "kept")
