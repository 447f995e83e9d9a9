"""The manager's SQLite database file: connections and versioned schema migrations.

One file (``<home>/manager.db``) in WAL mode holds the registry (agents, tokens, config,
audit) and the alert store. Each component owns a named, ordered list of migrations; applied
versions are recorded in ``schema_migrations`` and the rest run on start, each in its own
transaction. Every connection is made here so that WAL, busy timeout and foreign keys are
always set the same way.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from trailwarden.common.errors import StoreError

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another writer before the database reports it busy."""


class Database:
    """A SQLite file shared by the manager's components.

    ``connection()`` gives a connection private to the calling thread (sqlite3 connections must
    not be shared across threads); ``transaction()`` wraps work in BEGIN IMMEDIATE/COMMIT.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A new connection with the project's settings (autocommit; explicit transactions)."""
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT on this thread's connection; ROLLBACK on any error.

        sqlite3 errors become StoreError so callers never see the driver's exceptions.
        """
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path} busy or unwritable: {exc}") from exc
        try:
            yield conn
        except BaseException as exc:
            _rollback(conn)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"database {self.path}: {exc}") from exc
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise StoreError(f"database {self.path}: commit failed: {exc}") from exc

    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply ``migrations[n:]`` for ``component``; returns the schema version now in force.

        Each migration is a SQL script; version N is ``migrations[N-1]``. Never edit a shipped
        migration: append a new one.
        """
        conn = self.connection()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " component TEXT NOT NULL, version INTEGER NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
            " PRIMARY KEY (component, version))"
        )
        row = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?",
            (component,),
        ).fetchone()
        current = int(row[0])
        if current > len(migrations):
            raise StoreError(
                f"database {self.path}: {component} schema version {current} is newer than "
                f"this TrailWarden knows ({len(migrations)}); upgrade TrailWarden"
            )
        for version in range(current + 1, len(migrations) + 1):
            with self.transaction() as tx:
                for statement in _split_sql(migrations[version - 1]):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_migrations (component, version) VALUES (?, ?)",
                    (component, version),
                )
        return len(migrations)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script (no semicolons inside string literals in migrations)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def _rollback(conn: sqlite3.Connection) -> None:
    """ROLLBACK if a transaction is still open. On a full disk or an I/O error SQLite has
    already rolled back by itself, and a second ROLLBACK raised "no transaction is active",
    which hid the real error and escaped untranslated (the link then never acked or closed)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
