"""A manager.db written by the version-1 alert schema opens, is filled in and answers queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from trailwarden.manager.store import rows
from trailwarden.manager.store.query import build_alert_query, build_stats_query
from trailwarden.manager.store.sqlite import schema
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.store.sqlite.stats import alert_stats

from .factory import BASE_TIME, make_alert

V1_COLUMNS = (
    "alert_id, ts_ms, event_time_ms, event_time, rule_id, level, description, agent_id, "
    "agent_name, account, region, event_source, event_name, principal, source_ip, event_id, "
    "recipient_account, json"
)


def _old_database(path: Path, count: int) -> list[str]:
    """A database made by the old DDL (migration 1 only), rows as version 1 wrote them."""
    db = Database(path)
    assert db.migrate(schema.COMPONENT, schema.MIGRATIONS[:1]) == 1
    ids = []
    with db.transaction() as tx:
        for i in range(count):
            alert = make_alert(
                rule_id=("80202", "80255")[i % 2],
                mitre_ids=(("T1078",), ())[i % 2],
                bucket=("trail-a", "trail-b")[i % 2],
                error_code=("", "AccessDenied")[i % 3 == 0],
                source=("cloudtrail", "guardduty")[i % 5 == 0],
                event_time="" if i == 7 else None,
            )
            row = list(rows.alert_row(alert)[:18])
            row[2] = rows.time_ms(alert.event_time)  # version 1 kept NULL for a missing eventTime
            tx.execute(f"INSERT INTO alerts ({V1_COLUMNS}) VALUES ({', '.join('?' * 18)})", row)
            ids.append(alert.id)
    db.close()
    return ids


def test_old_database_is_filled_in_batches_and_queries_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "manager.db"
    ids = _old_database(path, 45)
    monkeypatch.setattr(schema, "UPGRADE_BATCH", 10)  # several transactions, as on a big file
    db = Database(path)
    store = SqliteAlertStore(db)
    conn = db.connection()
    version = conn.execute(
        "SELECT MAX(version) FROM schema_migrations WHERE component = 'alerts'"
    ).fetchone()[0]
    assert version == len(schema.MIGRATIONS) == 2
    assert conn.execute("SELECT COUNT(*) FROM alerts_upgrade").fetchone()[0] == 0
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {f"alerts_{c}_et" for c in schema.INDEXED_BY_EVENT_TIME} <= indexes
    assert not any(name.endswith("_ts") and name != "alerts_ts" for name in indexes)
    assert (
        conn.execute("SELECT COUNT(*) FROM alerts WHERE event_time_ms IS NULL").fetchone()[0] == 0
    )

    assert len(store.query(build_alert_query(limit=100)).alerts) == 45
    assert {a.id for a in store.query(build_alert_query(limit=100, bucket="trail-b")).alerts} == {
        ids[i] for i in range(45) if i % 2
    }
    assert len(store.query(build_alert_query(limit=100, mitre="T1078")).alerts) == 23
    assert len(store.query(build_alert_query(limit=100, error_code="AccessDenied")).alerts) == 15
    assert len(store.query(build_alert_query(limit=100, source="guardduty")).alerts) == 9
    for by in ("bucket", "mitre", "source", "error-code", "rule", "day", "country"):
        q = build_stats_query(by=by)
        assert alert_stats(conn, q) == alert_stats(conn, q, use_rollup=False), by
    assert store.stats(build_stats_query(by="bucket")).total == 45
    # New alerts after the upgrade count on top of the filled-in ones.
    fresh = make_alert(when=BASE_TIME, bucket="trail-c")
    store.commit([], [fresh])
    assert {b.key: b.count for b in store.stats(build_stats_query(by="bucket")).buckets} == {
        "trail-a": 23,
        "trail-b": 22,
        "trail-c": 1,
    }
    store.close()
    db.close()
    # Reopening does nothing more.
    again = Database(path)
    assert schema.finish_upgrade(again) == 0
    again.close()
