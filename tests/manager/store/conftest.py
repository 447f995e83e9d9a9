"""A real SQLite alert store in a temporary manager database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "manager.db")
    yield db
    db.close()


@pytest.fixture
def store(database: Database) -> Iterator[SqliteAlertStore]:
    s = SqliteAlertStore(database, archive=False, retention=RetentionPolicy())
    yield s
    s.close()
