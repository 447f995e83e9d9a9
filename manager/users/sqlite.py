"""Console users and sessions in the manager's SQLite database (component "console_users").

Every change to a user is audited in the same transaction as the change. Sessions belong to a
user (foreign key, ON DELETE CASCADE), and a password change deletes them explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

from trailwarden.common.errors import ConfigError, NotFoundError
from trailwarden.manager.agents.registry import Registry, now_ms, write_audit
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.users.base import (
    ConsoleUser,
    StoredSession,
    UserRecord,
    UserRole,
)

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE console_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
        password_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        created_by TEXT NOT NULL DEFAULT '',
        password_changed_ms INTEGER NOT NULL,
        last_login_ms INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES console_users(name) ON DELETE CASCADE,
        created_ms INTEGER NOT NULL,
        last_used_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        address TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX console_sessions_user ON console_sessions(user_name)
    """,
)


class SqliteUserStore:
    """`UserStore` over manager.db."""

    def __init__(self, database: Database) -> None:
        self.db = database
        Registry(database)  # the audit_log table these writes go to
        database.migrate("console_users", MIGRATIONS)

    # ---- users -------------------------------------------------------------------------------

    def add_user(self, name: str, role: UserRole, password_hash: str, actor: str) -> UserRecord:
        now = now_ms()
        with self.db.transaction() as tx:
            exists = tx.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone()
            if exists:
                raise ConfigError(f"console user {name!r} already exists")
            tx.execute(
                "INSERT INTO console_users (name, role, password_hash, created_ms, created_by,"
                " password_changed_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (name, role.value, password_hash, now, actor, now),
            )
            write_audit(tx, actor, "user.add", name, f"role={role.value}")
        return UserRecord(name, role.value, now, actor, now, 0, 0)

    def list_users(self) -> list[UserRecord]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT u.name, u.role, u.created_ms, u.created_by, u.password_changed_ms,"
                " u.last_login_ms, (SELECT COUNT(*) FROM console_sessions s"
                " WHERE s.user_name = u.name AND s.expires_ms > ?)"
                " FROM console_users u ORDER BY u.name",
                (now_ms(),),
            )
            .fetchall()
        )
        return [UserRecord(*row) for row in rows]

    def remove_user(self, name: str, actor: str) -> int:
        with self.db.transaction() as tx:
            ended = self._end_sessions(tx, name)
            if not tx.execute("DELETE FROM console_users WHERE name = ?", (name,)).rowcount:
                raise NotFoundError(f"no console user {name!r}")
            write_audit(tx, actor, "user.remove", name, f"sessions_ended={ended}")
        return ended

    def set_password_hash(self, name: str, password_hash: str, actor: str) -> int:
        with self.db.transaction() as tx:
            changed = tx.execute(
                "UPDATE console_users SET password_hash = ?, password_changed_ms = ?"
                " WHERE name = ?",
                (password_hash, now_ms(), name),
            ).rowcount
            if not changed:
                raise NotFoundError(f"no console user {name!r}")
            ended = self._end_sessions(tx, name)
            write_audit(tx, actor, "user.passwd", name, f"sessions_ended={ended}")
        return ended

    def password_hash(self, name: str) -> tuple[ConsoleUser, str] | None:
        row = (
            self.db.connection()
            .execute("SELECT name, role, password_hash FROM console_users WHERE name = ?", (name,))
            .fetchone()
        )
        if row is None:
            return None
        return ConsoleUser(str(row[0]), str(row[1])), str(row[2])

    def rehash(self, name: str, password_hash: str) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE console_users SET password_hash = ? WHERE name = ?", (password_hash, name)
            )

    @staticmethod
    def _end_sessions(tx: object, name: str) -> int:
        return int(
            tx.execute(  # type: ignore[attr-defined]
                "DELETE FROM console_sessions WHERE user_name = ?", (name,)
            ).rowcount
        )

    # ---- sessions ----------------------------------------------------------------------------

    def create_session(
        self, id_hash: str, name: str, at_ms: int, expires_ms: int, address: str
    ) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO console_sessions (id_hash, user_name, created_ms, last_used_ms,"
                " expires_ms, address) VALUES (?, ?, ?, ?, ?, ?)",
                (id_hash, name, at_ms, at_ms, expires_ms, address),
            )
            tx.execute("UPDATE console_users SET last_login_ms = ? WHERE name = ?", (at_ms, name))

    def session(self, id_hash: str) -> StoredSession | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT u.name, u.role, s.created_ms, s.last_used_ms, s.expires_ms, s.address"
                " FROM console_sessions s JOIN console_users u ON u.name = s.user_name"
                " WHERE s.id_hash = ?",
                (id_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return StoredSession(
            ConsoleUser(str(row[0]), str(row[1])), int(row[2]), int(row[3]), int(row[4]), row[5]
        )

    def touch_session(self, id_hash: str, at_ms: int) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE console_sessions SET last_used_ms = ? WHERE id_hash = ?", (at_ms, id_hash)
            )

    def delete_session(self, id_hash: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))

    def delete_expired_sessions(self, at_ms: int, idle_before_ms: int) -> int:
        with self.db.transaction() as tx:
            return int(
                tx.execute(
                    "DELETE FROM console_sessions WHERE expires_ms <= ? OR last_used_ms < ?",
                    (at_ms, idle_before_ms),
                ).rowcount
            )
