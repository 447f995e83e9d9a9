"""What only the SQLite backend has: its busy-lock behaviour and its rollup counts agreeing with a
scan. The behaviour both backends share is in ``contract/test_alerts.py``."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from trailwarden.common.errors import StoreError
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.query import build_stats_query
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

from .contract.test_alerts import T0, T1, corpus
from .factory import event_for, make_alert


@pytest.fixture
def loaded(store: SqliteAlertStore) -> tuple[SqliteAlertStore, list[Alert]]:
    alerts = corpus()
    assert store.commit([event_for(a) for a in alerts], alerts) == len(alerts)
    return store, alerts


def test_busy_database_is_a_store_error_and_nothing_is_half_stored(
    store: SqliteAlertStore, database: Database
) -> None:
    """Another writer holds the lock past the busy timeout: commit raises StoreError (ingest
    then withholds the ack), and once the lock is gone the same commit succeeds in full."""
    alert = make_alert()
    store.seen_events([])  # open this thread's connection, then shorten its busy wait
    database.connection().execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(database.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="busy or unwritable"):
            store.commit([event_for(alert)], [alert])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.seen_events([(alert.event_id, alert.recipient_account)]) == set()
    assert store.commit([event_for(alert)], [alert]) == 1


@pytest.mark.parametrize("by", ["rule", "level", "account", "user", "agent"])
def test_stats_strategies_agree(
    loaded: tuple[SqliteAlertStore, list[Alert]], database: Database, by: str
) -> None:
    """The rollup counts (unfiltered) and the scan of the alerts count the same."""
    from trailwarden.manager.store.sqlite.stats import alert_stats

    conn = database.connection()
    for kwargs in ({}, {"from_time": T0.isoformat(), "to_time": T1.isoformat()}):
        q = build_stats_query(by=by, **kwargs)
        rolled = alert_stats(conn, q, use_rollup=True)
        scanned = alert_stats(conn, q, use_rollup=False)
        assert rolled == scanned
        assert rolled.total == (60 if not kwargs else 30)
    if by == "rule":  # the label is the newest alert's description
        newest = make_alert(
            rule_id="80202", description="AWS CloudTrail: renamed", when=T1 + timedelta(days=5)
        )
        store, _ = loaded
        store.commit([event_for(newest)], [newest])
        for use_rollup in (True, False):
            labels = {
                b.key: b.label
                for b in alert_stats(
                    conn, build_stats_query(by="rule"), use_rollup=use_rollup
                ).buckets
            }
            assert labels["80202"] == "AWS CloudTrail: renamed"
            assert labels["80203"] == "AWS CloudTrail: ConsoleLogin"
