"""The ``alert_store`` fixture: every contract test runs once on SQLite and once on PostgreSQL.

Both are real: a SQLite file in the test's temporary folder, and a private schema of the run's
throwaway database on the local PostgreSQL server (``tests/fixtures/postgres.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from trailwarden.manager.store.base import AlertStore
from trailwarden.manager.store.postgres.alerts import PostgresAlertStore
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

BACKENDS = ("sqlite", "postgres")


class Backend:
    """Opens stores of one engine on one database (several stores: a reopened manager)."""

    def __init__(self, name: str, location: str) -> None:
        self.name = name
        self.location = location
        """The SQLite file path or the PostgreSQL URL."""
        self._opened: list[Any] = []

    def open(self, *, archive: bool = False, retention: RetentionPolicy | None = None) -> Any:
        store: AlertStore
        if self.name == "sqlite":
            database = Database(Path(self.location))
            self._opened.append(database)
            store = SqliteAlertStore(database, archive=archive, retention=retention)
        else:
            store = PostgresAlertStore.from_url(
                self.location, archive=archive, retention=retention, pool_max=4
            )
        self._opened.append(store)
        return store

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one statement on the database directly (tests that look beneath the store)."""
        if self.name == "sqlite":
            database = Database(Path(self.location))
            try:
                return list(database.connection().execute(statement).fetchall())
            finally:
                database.close()
        with psycopg.connect(self.location, autocommit=True) as conn:
            cursor = conn.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []

    def close(self) -> None:
        for item in reversed(self._opened):
            item.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        chosen = Backend("sqlite", str(tmp_path / "manager.db"))
    else:
        chosen = Backend("postgres", request.getfixturevalue("postgres_url"))
    yield chosen
    chosen.close()


@pytest.fixture
def alert_store(backend: Backend) -> Any:
    """A fresh, empty store (no archive, default retention) of each backend."""
    return backend.open()
