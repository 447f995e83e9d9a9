"""Session lifetime on the server: absolute expiry, idle timeout, and ended sessions purged.

Time passes by ageing the stored session rows in the real manager.db (what the clock would do),
not by replacing any part of the manager.
"""

from __future__ import annotations

import sqlite3

from tests.fixtures.console import Console

PASSWORD = "correct horse battery staple"
HOUR_MS = 3600 * 1000


def age_sessions(console: Console, *, created_ms: int = 0, last_used_ms: int = 0) -> None:
    """Move every session's clocks back by the given amounts."""
    with sqlite3.connect(console.running.home.path / "manager.db") as db:
        db.execute(
            "UPDATE console_sessions SET created_ms = created_ms - ?,"
            " expires_ms = expires_ms - ?, last_used_ms = last_used_ms - ?",
            (created_ms, created_ms, last_used_ms),
        )


def session_rows(console: Console) -> int:
    with sqlite3.connect(console.running.home.path / "manager.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM console_sessions").fetchone()[0])


def test_a_session_past_its_absolute_expiry_is_refused_however_active(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    client = console.client()
    reply = client.login("alice", PASSWORD)
    assert int(reply.cookies["__Host-tw_session"]["max-age"]) == 12 * 3600
    assert client.request("GET", "/").status == 200
    # Used a minute ago (never idle), but logged in 12 hours ago: the default session_ttl.
    age_sessions(console, created_ms=12 * HOUR_MS, last_used_ms=60_000)
    assert client.request("GET", "/").status == 303
    assert client.request("GET", "/api/x").status == 401
    assert session_rows(console) == 0  # ended, not only refused


def test_an_idle_session_ends_after_the_idle_timeout(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    client = console.client()
    client.login("alice", PASSWORD)
    age_sessions(console, last_used_ms=HOUR_MS - 120_000)  # 58 minutes idle: still alive
    assert client.request("GET", "/").status == 200
    # That request reset the idle clock: another 58 minutes idle is still within the hour.
    age_sessions(console, last_used_ms=HOUR_MS - 120_000)
    assert client.request("GET", "/").status == 200
    age_sessions(console, last_used_ms=HOUR_MS + 1000)
    assert client.request("GET", "/").status == 303


def test_a_login_purges_sessions_that_ended_by_time(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    for _ in range(3):
        console.client().login("alice", PASSWORD)
    assert session_rows(console) == 3
    age_sessions(console, last_used_ms=2 * HOUR_MS)
    console.client().login("alice", PASSWORD)
    assert session_rows(console) == 1
