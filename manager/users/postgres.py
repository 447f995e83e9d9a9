"""Console users and sessions in the PostgreSQL store (``[store] url``, component
"console_users"), so managers sharing one database share logins and sessions.

Behaves as ``sqlite.py`` does. The audit log still lives in each manager's manager.db (the
registry), so this store takes an ``audit`` callable and calls it inside the PostgreSQL
transaction, last: if the audit write fails the user change rolls back; if the PostgreSQL
commit fails after it, an entry names a change that did not happen (an audit log may say too
much, never too little).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trailwarden.common.errors import ConfigError, NotFoundError
from trailwarden.manager.agents.registry import now_ms
from trailwarden.manager.store.postgres.database import Connection, PgDatabase
from trailwarden.manager.users.base import (
    ConsoleUser,
    StoredSession,
    UserRecord,
    UserRole,
)

COMPONENT = "console_users"
"""The migration component name in ``schema_version``."""

AuditWriter = Callable[[str, str, str, str], None]
"""``audit(actor, action, target, detail)``: e.g. ``Registry.audit`` of the manager."""

MIGRATIONS: Sequence[str] = (
    # 1: the tables of sqlite.py; ``COLLATE "C"`` so names sort bytewise, as on SQLite.
    """
    CREATE TABLE console_users (
        name TEXT COLLATE "C" PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
        password_hash TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        created_by TEXT NOT NULL DEFAULT '',
        password_changed_ms BIGINT NOT NULL,
        last_login_ms BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,
        user_name TEXT COLLATE "C" NOT NULL
            REFERENCES console_users(name) ON DELETE CASCADE,
        created_ms BIGINT NOT NULL,
        last_used_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        address TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX console_sessions_user ON console_sessions(user_name);
    """,
)


def migrate_user_tables(database: PgDatabase) -> int:
    """Apply the console users' migrations (`manager init --store` and every start)."""
    return database.migrate(COMPONENT, MIGRATIONS)


class PostgresUserStore:
    """`UserStore` over a `PgDatabase` (the alert store's pool); audit entries go to
    ``audit``."""

    def __init__(self, database: PgDatabase, audit: AuditWriter) -> None:
        self.db = database
        self._audit = audit
        migrate_user_tables(database)

    # ---- users -------------------------------------------------------------------------------

    def add_user(self, name: str, role: UserRole, password_hash: str, actor: str) -> UserRecord:
        now = now_ms()
        with self.db.transaction("console user add") as conn:
            # ON CONFLICT: two managers adding the same name at once cannot both succeed.
            added = conn.execute(
                "INSERT INTO console_users (name, role, password_hash, created_ms, created_by,"
                " password_changed_ms) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                (name, role.value, password_hash, now, actor, now),
            ).rowcount
            if not added:
                raise ConfigError(f"console user {name!r} already exists")
            self._audit(actor, "user.add", name, f"role={role.value}")
        return UserRecord(name, role.value, now, actor, now, 0, 0)

    def list_users(self) -> list[UserRecord]:
        def work(conn: Connection) -> list[UserRecord]:
            rows = conn.execute(
                "SELECT u.name, u.role, u.created_ms, u.created_by, u.password_changed_ms,"
                " u.last_login_ms, (SELECT COUNT(*) FROM console_sessions s"
                " WHERE s.user_name = u.name AND s.expires_ms > %s)"
                " FROM console_users u ORDER BY u.name",
                (now_ms(),),
            ).fetchall()
            return [
                UserRecord(
                    str(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4]), int(r[5]), int(r[6])
                )
                for r in rows
            ]

        return self.db.read("console user list", work)

    def remove_user(self, name: str, actor: str) -> int:
        with self.db.transaction("console user remove") as conn:
            ended = _end_sessions(conn, name)
            if not conn.execute("DELETE FROM console_users WHERE name = %s", (name,)).rowcount:
                raise NotFoundError(f"no console user {name!r}")
            self._audit(actor, "user.remove", name, f"sessions_ended={ended}")
        return ended

    def set_password_hash(self, name: str, password_hash: str, actor: str) -> int:
        with self.db.transaction("console user password change") as conn:
            changed = conn.execute(
                "UPDATE console_users SET password_hash = %s, password_changed_ms = %s"
                " WHERE name = %s",
                (password_hash, now_ms(), name),
            ).rowcount
            if not changed:
                raise NotFoundError(f"no console user {name!r}")
            ended = _end_sessions(conn, name)
            self._audit(actor, "user.passwd", name, f"sessions_ended={ended}")
        return ended

    def password_hash(self, name: str) -> tuple[ConsoleUser, str] | None:
        row = self.db.read(
            "console user lookup",
            lambda conn: conn.execute(
                "SELECT name, role, password_hash FROM console_users WHERE name = %s", (name,)
            ).fetchone(),
        )
        if row is None:
            return None
        return ConsoleUser(str(row[0]), str(row[1])), str(row[2])

    def rehash(self, name: str, password_hash: str) -> None:
        with self.db.transaction("console user rehash") as conn:
            conn.execute(
                "UPDATE console_users SET password_hash = %s WHERE name = %s",
                (password_hash, name),
            )

    # ---- sessions ----------------------------------------------------------------------------

    def create_session(
        self, id_hash: str, name: str, at_ms: int, expires_ms: int, address: str
    ) -> None:
        with self.db.transaction("console session create") as conn:
            conn.execute(
                "INSERT INTO console_sessions (id_hash, user_name, created_ms, last_used_ms,"
                " expires_ms, address) VALUES (%s, %s, %s, %s, %s, %s)",
                (id_hash, name, at_ms, at_ms, expires_ms, address),
            )
            conn.execute(
                "UPDATE console_users SET last_login_ms = %s WHERE name = %s", (at_ms, name)
            )

    def session(self, id_hash: str) -> StoredSession | None:
        row = self.db.read(
            "console session lookup",
            lambda conn: conn.execute(
                "SELECT u.name, u.role, s.created_ms, s.last_used_ms, s.expires_ms, s.address"
                " FROM console_sessions s JOIN console_users u ON u.name = s.user_name"
                " WHERE s.id_hash = %s",
                (id_hash,),
            ).fetchone(),
        )
        if row is None:
            return None
        return StoredSession(
            ConsoleUser(str(row[0]), str(row[1])),
            int(row[2]),
            int(row[3]),
            int(row[4]),
            str(row[5]),
        )

    def touch_session(self, id_hash: str, at_ms: int) -> None:
        with self.db.transaction("console session touch") as conn:
            conn.execute(
                "UPDATE console_sessions SET last_used_ms = %s WHERE id_hash = %s",
                (at_ms, id_hash),
            )

    def delete_session(self, id_hash: str) -> None:
        with self.db.transaction("console session delete") as conn:
            conn.execute("DELETE FROM console_sessions WHERE id_hash = %s", (id_hash,))

    def delete_expired_sessions(self, at_ms: int, idle_before_ms: int) -> int:
        with self.db.transaction("console session purge") as conn:
            return int(
                conn.execute(
                    "DELETE FROM console_sessions WHERE expires_ms <= %s OR last_used_ms < %s",
                    (at_ms, idle_before_ms),
                ).rowcount
            )


def _end_sessions(conn: Connection, name: str) -> int:
    return int(conn.execute("DELETE FROM console_sessions WHERE user_name = %s", (name,)).rowcount)
