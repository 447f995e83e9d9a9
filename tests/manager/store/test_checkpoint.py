"""The write-ahead log is checkpointed on its own thread, not by the committing connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.manager.store.factory import event_for, make_alert
from trailwarden.manager.store.query import build_alert_query
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.checkpoint import SAFETY_NET_PAGES, WalCheckpointer
from trailwarden.manager.store.sqlite.database import Database


@pytest.fixture
def lazy_store(database: Database) -> Iterator[SqliteAlertStore]:
    """A store whose commits leave checkpoints to someone else (as the manager's does)."""
    store = SqliteAlertStore(database, wal_autocheckpoint_pages=SAFETY_NET_PAGES)
    yield store
    store.close()


def commit_alerts(store: SqliteAlertStore, batches: int, size: int = 200) -> int:
    for _ in range(batches):
        alerts = [make_alert(extra_data={"padding": "x" * 2000}) for _ in range(size)]
        store.commit([event_for(a) for a in alerts], alerts)
    return batches * size


def wal(database: Database) -> Path:
    return database.path.with_name(database.path.name + "-wal")


def test_commits_leave_the_log_to_the_checkpointer(
    database: Database, lazy_store: SqliteAlertStore
) -> None:
    stored = commit_alerts(lazy_store, 10)
    # Nothing copied the log back yet: the database file holds little more than the schema.
    before = database.path.stat().st_size
    assert wal(database).stat().st_size > 4 * before
    checkpointer = WalCheckpointer(database, interval=0.05)
    checkpointer.start()
    deadline = time.monotonic() + 20
    while checkpointer.checkpoints < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    checkpointer.stop()
    assert checkpointer.checkpoints >= 2
    assert database.path.stat().st_size > 4 * before
    # The database file now answers on its own: every alert is there.
    page = lazy_store.query(build_alert_query(limit=stored))
    assert len(page.alerts) == stored


def test_a_large_log_is_truncated(database: Database, lazy_store: SqliteAlertStore) -> None:
    commit_alerts(lazy_store, 5)
    assert wal(database).stat().st_size > 100_000
    checkpointer = WalCheckpointer(database, interval=0.05, truncate_above=100_000)
    checkpointer.start()
    deadline = time.monotonic() + 20
    while wal(database).stat().st_size and time.monotonic() < deadline:
        time.sleep(0.05)
    checkpointer.stop()
    assert wal(database).stat().st_size == 0
    assert len(lazy_store.query(build_alert_query(limit=1000)).alerts) == 1000
