"""The query layer on a real SQLite store: every filter, stats by every field, series, time basis.

Expected answers are computed here in Python from the alerts themselves, and the store's two
ways of counting (rollup counts for unfiltered event-time questions, indexed scans otherwise)
must both give them, for ranges that start and end mid-hour so that every piece of a range
(whole days, whole hours, the minutes at the edges) is exercised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.geo import country_of
from trailwarden.manager.store.base import OTHER_GROUP, StatsField
from trailwarden.manager.store.query import (
    build_alert_query,
    build_series_query,
    build_stats_query,
)
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.store.sqlite.series import alert_series
from trailwarden.manager.store.sqlite.stats import alert_stats

from .factory import BASE_TIME, event_for, make_alert

START = BASE_TIME - timedelta(days=6)
SOURCES = ("cloudtrail", "cloudtrail", "cloudtrail", "guardduty")
EVENT_SOURCES = ("iam.amazonaws.com", "s3.amazonaws.com", "ec2.amazonaws.com")
BUCKETS = ("trail-a", "trail-b")
ERRORS = ("", "", "AccessDenied", "", "UnauthorizedOperation")
MITRE = ((), ("T1078",), ("T1078", "T1098"), (), ("T1562.008",))
GROUPS = (("amazon", "aws_cloudtrail"), ("amazon", "iam"), ("amazon", "aws_cloudtrail", "s3"))


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
                source_ip=f"198.51.100.{i % 6}",
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
    for first in range(0, len(alerts), 64):  # several commits, as ingest would
        batch = alerts[first : first + 64]
        assert store.commit([event_for(a) for a in batch], batch) == len(batch)
    return store, alerts


def _ids(store: SqliteAlertStore, **kwargs: Any) -> list[str]:
    page = store.query(build_alert_query(limit=1000, **kwargs))
    assert page.next_page_token == ""
    return [a.id for a in page.alerts]


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_new_filter_alone_and_with_a_range(
    loaded: tuple[SqliteAlertStore, list[Alert]], name: str
) -> None:
    store, alerts = loaded
    kwargs, keep = FILTERS[name]
    newest_first = sorted(alerts, key=event_dt, reverse=True)
    expected = [a.id for a in newest_first if keep(a)]
    if name != "mitre prefix is not a match":
        assert 0 < len(expected) < len(alerts), "the corpus must make this filter discriminate"
    assert _ids(store, **kwargs) == expected
    assert _ids(store, **kwargs, **RANGE) == [a.id for a in newest_first if keep(a) and in_range(a)]


@pytest.mark.parametrize("by", [f for f in StatsField if not f.is_time], ids=lambda f: f.value)
@pytest.mark.parametrize("ranged", [False, True], ids=["all", "mid-hour range"])
def test_stats_by_every_field_match_python(
    loaded: tuple[SqliteAlertStore, list[Alert]], database: Database, by: StatsField, ranged: bool
) -> None:
    store, alerts = loaded
    kept = [a for a in alerts if in_range(a)] if ranged else alerts
    expected = Counter(v for a in kept for v in value_of(by, a))
    q = build_stats_query(by=by.value, **(RANGE if ranged else {}))
    result = store.stats(q)
    assert {b.key: b.count for b in result.buckets} == dict(expected)
    assert result.total == len(kept) and result.other == 0
    assert [b.count for b in result.buckets] == sorted(expected.values(), reverse=True)
    conn = database.connection()
    assert alert_stats(conn, q, use_rollup=False) == result, "rollup and scan disagree"


def test_stats_with_filters_and_top_n(loaded: tuple[SqliteAlertStore, list[Alert]]) -> None:
    store, alerts = loaded
    iam = [a for a in alerts if a.event_source == "iam.amazonaws.com" and in_range(a)]
    result = store.stats(
        build_stats_query(by="event-name", top=2, event_source="iam.amazonaws.com", **RANGE)
    )
    expected = Counter(a.event_name for a in iam).most_common()
    assert [(b.key, b.count) for b in result.buckets] == sorted(
        expected, key=lambda kv: (-kv[1], kv[0])
    )[:2]
    assert result.total == len(iam)
    assert result.other == len(iam) - sum(b.count for b in result.buckets) > 0
    detections = store.stats(build_stats_query(by="rule", min_level=5))
    assert {b.key for b in detections.buckets} == {"80250", "80255"}
    assert {b.label for b in detections.buckets} == {"AWS CloudTrail: ConsoleLogin"}


@pytest.mark.parametrize("by", ["hour", "day"])
def test_stats_by_hour_and_day(
    loaded: tuple[SqliteAlertStore, list[Alert]], database: Database, by: str
) -> None:
    store, alerts = loaded
    fmt = "%Y-%m-%dT%H:00Z" if by == "hour" else "%Y-%m-%d"
    expected = Counter(event_dt(a).strftime(fmt) for a in alerts if in_range(a))
    q = build_stats_query(by=by, **RANGE)
    result = store.stats(q)
    assert [(b.key, b.count) for b in result.buckets] == sorted(expected.items())
    assert alert_stats(database.connection(), q, use_rollup=False) == result


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


@pytest.mark.parametrize("interval", ["15m", "1h", "3h", "1d"])
@pytest.mark.parametrize("split", ["", "rule", "mitre"])
def test_series_buckets_split_and_other(
    loaded: tuple[SqliteAlertStore, list[Alert]], database: Database, interval: str, split: str
) -> None:
    store, alerts = loaded
    q = build_series_query(interval=interval, split=split, top=2, **RANGE)
    result = store.series(q)
    size = q.interval_seconds
    first = int(FROM.timestamp()) // size * size
    assert result.starts[0] == datetime.fromtimestamp(first, tz=UTC)
    assert all(
        (b - a).total_seconds() == size
        for a, b in zip(result.starts, result.starts[1:], strict=False)
    )
    assert result.starts[-1] < TO <= result.starts[-1] + timedelta(seconds=size)
    kept = [a for a in alerts if in_range(a)]
    assert result.total == len(kept)
    # Every group has a count for every bucket, empty ones included.
    assert all(len(g.counts) == len(result.starts) for g in result.groups)
    index = {start: i for i, start in enumerate(result.starts)}

    def bucket_of(a: Alert) -> int:
        t = int(event_dt(a).timestamp()) // size * size
        return index[datetime.fromtimestamp(t, tz=UTC)]

    if not split:
        (group,) = result.groups
        expected = [0] * len(result.starts)
        for a in kept:
            expected[bucket_of(a)] += 1
        assert list(group.counts) == expected
        if interval == "15m":
            assert 0 in group.counts, "empty buckets must be present"
    else:
        field = StatsField(split)
        totals = Counter(v for a in kept for v in value_of(field, a))
        top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        assert [(g.key, g.total) for g in result.groups[:2]] == top
        other = result.groups[2]
        assert other.is_other and other.key == OTHER_GROUP
        assert other.total == sum(totals.values()) - sum(n for _, n in top)
        for group in result.groups[:2]:
            expected = [0] * len(result.starts)
            for a in kept:
                if group.key in value_of(field, a):
                    expected[bucket_of(a)] += 1
            assert list(group.counts) == expected
    assert alert_series(database.connection(), q, use_rollup=False) == result


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


def test_series_with_filter_is_the_filtered_count(
    loaded: tuple[SqliteAlertStore, list[Alert]],
) -> None:
    store, alerts = loaded
    q = build_series_query(
        interval="1d", split="rule", event_source="iam.amazonaws.com", top=10, **RANGE
    )
    result = store.series(q)
    iam = [a for a in alerts if a.event_source == "iam.amazonaws.com" and in_range(a)]
    assert result.total == len(iam)
    assert {g.key: g.total for g in result.groups} == dict(Counter(a.rule.id for a in iam))
    assert not any(g.is_other for g in result.groups)


def test_backfill_shows_under_event_time_and_arrival_on_the_switch(store: SqliteAlertStore) -> None:
    now = datetime.now(UTC)
    week_ago = now - timedelta(days=7)
    backfilled = make_alert(when=now - timedelta(minutes=2), event_time=week_ago.isoformat())
    live = make_alert(when=now - timedelta(minutes=1))
    no_time = make_alert(when=now - timedelta(minutes=3), event_time="")
    store.commit([event_for(a) for a in (backfilled, live, no_time)], [backfilled, live, no_time])
    # Event time (default): last week's record is under last week, not in the last day.
    # (no eventTime: placed at its arrival, 3 min ago; the live one happened 6 min ago)
    assert _ids(store, since="24h") == [no_time.id, live.id]
    last_week = {
        "from_time": (week_ago - timedelta(hours=1)).isoformat(),
        "to_time": (week_ago + timedelta(hours=1)).isoformat(),
    }
    assert _ids(store, **last_week) == [backfilled.id]
    assert store.stats(build_stats_query(by="rule", **last_week)).total == 1
    day = store.series(build_series_query(since="24h", interval="1h"))
    assert day.total == 2
    # Arrival: all three arrived in the last minutes.
    assert _ids(store, since="24h", time_basis="arrival") == [live.id, backfilled.id, no_time.id]
    assert store.stats(build_stats_query(by="rule", since="24h", time_basis="arrival")).total == 3
    assert _ids(store, time_basis="arrival", **last_week) == []
    # No eventTime: placed at its arrival time on the event axis too.
    (got,) = [a for a in store.query(build_alert_query(since="1h")).alerts if a.id == no_time.id]
    assert got.event_time == ""


def test_paging_by_event_time_is_stable_while_alerts_arrive(store: SqliteAlertStore) -> None:
    first = [make_alert(when=BASE_TIME - timedelta(minutes=m)) for m in range(40)]
    store.commit([event_for(a) for a in first], first)
    seen: list[str] = []
    token = ""
    for round_ in range(10):
        page = store.query(build_alert_query(limit=7, page_token=token))
        seen.extend(a.id for a in page.alerts)
        # Newer alerts (and older backfilled ones) arriving between pages change nothing.
        extra = [
            make_alert(when=BASE_TIME + timedelta(minutes=round_ + 1)),
            make_alert(when=BASE_TIME - timedelta(days=3, minutes=round_)),
        ]
        store.commit([event_for(a) for a in extra], extra)
        token = page.next_page_token
        if not token:
            break
    older = [a.id for a in store.query(build_alert_query(limit=1000)).alerts]
    assert seen[:40] == [a.id for a in first]  # newest event time first, each once
    assert len(set(seen)) == len(seen)
    assert set(older) >= set(seen)


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
