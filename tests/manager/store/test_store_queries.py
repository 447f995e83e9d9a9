"""The query layer on a real SQLite store: every filter, stats by every field, series, time basis.

Expected answers are computed here in Python from the alerts themselves, and the store's two
ways of counting (rollup counts for unfiltered event-time questions, indexed scans otherwise)
must both give them, for ranges that start and end mid-hour so that every piece of a range
(whole days, whole hours, the minutes at the edges) is exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.geo import country_of
from trailwarden.manager.store.base import StatsField
from trailwarden.manager.store.query import (
    build_series_query,
    build_stats_query,
)
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.store.sqlite.series import alert_series
from trailwarden.manager.store.sqlite.stats import alert_stats

from .factory import BASE_TIME, commit_in_batches, event_for, make_alert

START = BASE_TIME - timedelta(days=6)
SOURCES = ("cloudtrail", "cloudtrail", "cloudtrail", "guardduty")
EVENT_SOURCES = ("iam.amazonaws.com", "s3.amazonaws.com", "ec2.amazonaws.com")
BUCKETS = ("trail-a", "trail-b")
ERRORS = ("", "", "AccessDenied", "", "UnauthorizedOperation")
MITRE = ((), ("T1078",), ("T1078", "T1098"), (), ("T1562.008",))
GROUPS = (("amazon", "aws_cloudtrail"), ("amazon", "iam"), ("amazon", "aws_cloudtrail", "s3"))
SOURCE_IPS = ("198.51.100.4", "8.8.8.8", "81.2.69.160", "8.8.4.4", "10.0.0.1", "s3.amazonaws.com")
"""Countries (``StatsField.COUNTRY``) that sum several addresses: two in the United States, two
private (a documentation range and RFC 1918), one in the United Kingdom, one AWS service."""


def corpus() -> list[Alert]:
    """300 alerts, one every 27 minutes over ~5.6 days, fields varying independently."""
    alerts = []
    for i in range(300):
        alerts.append(
            make_alert(
                when=START + timedelta(minutes=27 * i),
                rule_id=("80202", "80203", "80250", "80255")[i % 4],
                level=(3, 3, 5, 12)[i % 4],
                user=("alice", "bob", "carol", "dave", "erin")[(i // 2) % 5],
                agent_id=("agent-1", "agent-2")[i % 2],
                agent_name=("host-1", "host-2")[i % 2],
                account=("111111111111", "222222222222", "333333333333")[(i // 3) % 3],
                region=("us-east-1", "eu-west-1")[(i // 7) % 2],
                event_source=EVENT_SOURCES[i % 3],
                event_name=("ConsoleLogin", "CreateUser", "GetObject", "StopLogging")[(i // 5) % 4],
                source_ip=SOURCE_IPS[i % 6],
                source=SOURCES[i % 4],
                bucket=BUCKETS[(i // 11) % 2],
                error_code=ERRORS[i % 5],
                mitre_ids=MITRE[(i // 2) % 5],
                groups=GROUPS[i % 3],
            )
        )
    return alerts


def value_of(field: StatsField, alert: Alert) -> list[str]:
    aws = alert.data["aws"]
    values: dict[StatsField, Callable[[], list[str]]] = {
        StatsField.RULE: lambda: [alert.rule.id],
        StatsField.LEVEL: lambda: [str(alert.rule.level)],
        StatsField.ACCOUNT: lambda: [alert.account],
        StatsField.REGION: lambda: [alert.region],
        StatsField.USER: lambda: [alert.user],
        StatsField.EVENT_NAME: lambda: [alert.event_name],
        StatsField.EVENT_SOURCE: lambda: [alert.event_source],
        StatsField.SOURCE: lambda: [aws["source"]],
        StatsField.BUCKET: lambda: [aws["log_info"]["s3bucket"]],
        StatsField.ERROR_CODE: lambda: [aws.get("errorCode", "")],
        StatsField.SOURCE_IP: lambda: [alert.source_ip],
        StatsField.AGENT: lambda: [alert.agent.id],
        StatsField.MITRE: lambda: list(alert.rule.mitre_ids),
        StatsField.GROUP: lambda: list(alert.rule.groups),
        StatsField.COUNTRY: lambda: [country_of(alert.source_ip)],
    }
    return values[field]()


def event_dt(alert: Alert) -> datetime:
    return datetime.fromisoformat(alert.event_time)


FROM = START + timedelta(days=1, hours=3, minutes=17)
TO = START + timedelta(days=4, hours=20, minutes=41)
RANGE = {"from_time": FROM.isoformat(), "to_time": TO.isoformat()}


def in_range(alert: Alert) -> bool:
    return FROM <= event_dt(alert) < TO


FILTERS: dict[str, tuple[dict[str, Any], Callable[[Alert], bool]]] = {
    "level": ({"level": 5}, lambda a: a.rule.level == 5),
    "event source": (
        {"event_source": "iam.amazonaws.com"},
        lambda a: a.event_source == "iam.amazonaws.com",
    ),
    "source": ({"source": "guardduty"}, lambda a: a.data["aws"]["source"] == "guardduty"),
    "bucket": ({"bucket": "trail-b"}, lambda a: a.data["aws"]["log_info"]["s3bucket"] == "trail-b"),
    "error code": (
        {"error_code": "AccessDenied"},
        lambda a: a.data["aws"].get("errorCode") == "AccessDenied",
    ),
    "source ip": ({"source_ip": "198.51.100.4"}, lambda a: a.source_ip == "198.51.100.4"),
    "group": ({"group": "iam"}, lambda a: "iam" in a.rule.groups),
    "mitre": ({"mitre": "T1098"}, lambda a: "T1098" in a.rule.mitre_ids),
    "mitre prefix is not a match": ({"mitre": "T1562"}, lambda a: "T1562" in a.rule.mitre_ids),
}


@pytest.fixture
def loaded(store: SqliteAlertStore) -> tuple[SqliteAlertStore, list[Alert]]:
    alerts = corpus()
    commit_in_batches(store, alerts)
    return store, alerts


@pytest.mark.parametrize("by", [f.value for f in StatsField], ids=str)
@pytest.mark.parametrize("ranged", [False, True], ids=["all", "mid-hour range"])
def test_rollup_counts_and_scans_agree_for_stats_by_every_field(
    loaded: tuple[SqliteAlertStore, list[Alert]], database: Database, by: str, ranged: bool
) -> None:
    """The stats themselves are checked against Python in contract/test_queries.py; here the
    SQLite rollup path must give exactly what its scan gives."""
    store, _ = loaded
    q = build_stats_query(by=by, **(RANGE if ranged else {}))
    result = store.stats(q)
    assert result.total > 0
    assert alert_stats(database.connection(), q, use_rollup=False) == result


@pytest.mark.parametrize("interval", ["15m", "1h", "3h", "1d"])
@pytest.mark.parametrize("split", ["", "rule", "mitre"])
def test_rollup_counts_and_scans_agree_for_series(
    loaded: tuple[SqliteAlertStore, list[Alert]], database: Database, interval: str, split: str
) -> None:
    store, _ = loaded
    q = build_series_query(interval=interval, split=split, top=2, **RANGE)
    result = store.series(q)
    assert result.total > 0
    assert alert_series(database.connection(), q, use_rollup=False) == result


def test_auto_interval_gives_20_to_120_buckets() -> None:
    now = datetime(2026, 11, 26, 15, 7, tzinfo=UTC)
    for since, seconds in (
        ("15m", 60),
        ("1h", 60),
        ("2h", 60),
        ("19h", 600),  # hours would give fewer than 20 buckets
        ("20h", 3600),  # whole hours (read from the counts) when they give at least 20
        ("24h", 3600),
        ("7d", 7200),
        ("30d", 21600),
        ("90d", 86400),
    ):
        q = build_series_query(since=since, now=now)
        assert q.interval_seconds == seconds, since
    for since in ("24h", "7d", "30d"):
        q = build_series_query(since=since, now=now)
        assert q.filter.start is not None and q.filter.end is not None
        buckets = (q.filter.end - q.filter.start).total_seconds() / q.interval_seconds
        assert 20 <= buckets <= 121, since


@pytest.mark.parametrize(
    ("by", "filters"),
    [
        ("rule", {"min_level": 5}),
        ("rule", {"level": 12}),
        ("rule", {"level": 5, "min_level": 4}),
        ("mitre", {"min_level": 5}),
        ("event-name", {"event_source": "iam.amazonaws.com"}),
        ("rule", {"event_source": "s3.amazonaws.com"}),
    ],
)
def test_the_console_filters_read_from_counts_give_what_a_scan_gives(
    loaded: tuple[SqliteAlertStore, list[Alert]],
    database: Database,
    by: str,
    filters: dict[str, Any],
) -> None:
    from trailwarden.manager.store.sqlite.rollup import route

    store, _ = loaded
    conn = database.connection()
    for ranged in ({}, RANGE):
        q = build_stats_query(by=by, **filters, **ranged)
        assert route(q.filter, q.by) is not None, "this panel should be read from the counts"
        result = store.stats(q)
        assert result == alert_stats(conn, q, use_rollup=False)
        assert result.total > 0
        series = build_series_query(interval="3h", split=by, **filters, **RANGE)
        assert store.series(series) == alert_series(conn, series, use_rollup=False)
        total = build_series_query(interval="1h", **filters, **RANGE)
        assert store.series(total) == alert_series(conn, total, use_rollup=False)


def test_resent_alerts_and_retention_keep_the_rollup_exact(
    database: Database,
) -> None:
    store = SqliteAlertStore(database, retention=RetentionPolicy(alerts_days=3))
    now = datetime.now(UTC)
    old = [make_alert(when=now - timedelta(days=5, minutes=m)) for m in range(30)]
    new = [make_alert(when=now - timedelta(hours=1, minutes=m)) for m in range(20)]
    store.commit([event_for(a) for a in old + new], old + new)
    assert store.commit([event_for(a) for a in new[:5]], new[:5]) == 0  # resent: ignored
    conn = database.connection()
    for q in (build_stats_query(by="user"), build_stats_query(by="day")):
        assert alert_stats(conn, q) == alert_stats(conn, q, use_rollup=False)
    assert store.stats(build_stats_query(by="user")).total == 50
    assert store.prune(now).alerts_by_age == 30
    for q in (build_stats_query(by="user"), build_stats_query(by="day")):
        assert alert_stats(conn, q) == alert_stats(conn, q, use_rollup=False)
    assert store.stats(build_stats_query(by="user")).total == 20
    negative = conn.execute("SELECT COUNT(*) FROM alert_counts WHERE n <= 0").fetchone()[0]
    assert negative == 0
