"""The ``users`` fixture: every `UserStore` contract test runs once on SQLite and once on
PostgreSQL, both real (a manager.db in the test's folder; a private schema of the run's
throwaway database on the local server, ``tests/fixtures/postgres.py``).

Either way the audit entries land in the registry of a real manager.db, as in a manager.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trailwarden.manager.agents.registry import AuditRecord, Registry
from trailwarden.manager.store.postgres.database import PgDatabase
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.users.base import UserStore
from trailwarden.manager.users.postgres import PostgresUserStore
from trailwarden.manager.users.sqlite import SqliteUserStore

BACKENDS = ("sqlite", "postgres")


@dataclass
class Users:
    """A user store of one backend and the registry its audit entries go to."""

    backend: str
    store: UserStore
    registry: Registry
    reopen: Callable[[], UserStore]
    """A second store on the same database (another manager, or this one restarted)."""

    def audit(self, action: str) -> list[AuditRecord]:
        return [e for e in reversed(self.registry.audit_entries(500)) if e.action == action]


@pytest.fixture(params=BACKENDS)
def users(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Users]:
    database = Database(tmp_path / "manager.db")
    registry = Registry(database)
    opened: list[PgDatabase] = []
    if request.param == "sqlite":
        store: UserStore = SqliteUserStore(database)

        def reopen() -> UserStore:
            return SqliteUserStore(database)
    else:
        url = request.getfixturevalue("postgres_url")
        pool = PgDatabase(url, max_size=2)
        opened.append(pool)
        store = PostgresUserStore(pool, registry.audit)

        def reopen() -> UserStore:
            other = PgDatabase(url, max_size=2)
            opened.append(other)
            return PostgresUserStore(other, registry.audit)

    yield Users(request.param, store, registry, reopen)
    for pool in opened:
        pool.close()
    database.close()
