"""Fixtures of the output tests: a real SQLite alert store and a real local HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.manager.outputs.receivers import HttpReceiver
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAlertStore]:
    database = Database(tmp_path / "manager.db")
    yield SqliteAlertStore(database)
    database.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """Not listening yet: call ``open()`` (a test may want the port closed first)."""
    server = HttpReceiver()
    yield server
    server.close()
