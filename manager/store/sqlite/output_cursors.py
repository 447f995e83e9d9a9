"""Delivered-cursors of the outputs (alerts file, webhooks, ...) in the manager database.

One row per output name: the store cursor (``alerts.seq``) of the last alert that output has
durably delivered. A delivery loop (``manager/outputs/delivery.py``) reads the alerts after it,
delivers them, then moves it here, in a transaction of its own: what an output has not
delivered stays after its cursor and is replayed from the store after a crash or a failure.
"""

from __future__ import annotations

import sqlite3

from trailwarden.common.errors import StoreError
from trailwarden.manager.store.sqlite.database import Database

COMPONENT = "output_cursors"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE output_cursors (
        name TEXT PRIMARY KEY,
        cursor INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER) * 1000)
    )
    """,
)
"""Versioned schema of the ``output_cursors`` component. Append, never edit."""


class OutputCursors:
    """Read and move outputs' delivered-cursors (sqlite3 errors become StoreError)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        try:
            database.migrate(COMPONENT, MIGRATIONS)
        except sqlite3.Error as exc:
            raise StoreError(
                f"database {database.path}: output cursor migration failed: {exc}"
            ) from exc

    def get(self, name: str) -> int | None:
        """The output's cursor; None if it has never delivered (or been initialised)."""
        try:
            row = (
                self._db.connection()
                .execute("SELECT cursor FROM output_cursors WHERE name = ?", (name,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise StoreError(f"database {self._db.path}: output cursor read failed: {exc}") from exc
        return None if row is None else int(row[0])

    def save(self, name: str, cursor: int) -> None:
        """Commit the output's cursor (one small transaction)."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO output_cursors (name, cursor, updated_ms) "
                "VALUES (?, ?, CAST(strftime('%s','now') AS INTEGER) * 1000) "
                "ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor, "
                "updated_ms = excluded.updated_ms",
                (name, cursor),
            )
