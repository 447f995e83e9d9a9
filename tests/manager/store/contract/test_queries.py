"""The query layer on both backends: every filter, stats by every field, series, time basis.

Expected answers are computed here in Python from the alerts themselves (the corpus and its
helpers are ``test_store_queries.py``'s), for ranges that start and end mid-hour.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.base import OTHER_GROUP, StatsField
from trailwarden.manager.store.query import (
    build_alert_query,
    build_series_query,
    build_stats_query,
)

from ..factory import BASE_TIME, commit_in_batches, event_for, ids_of, make_alert
from ..test_store_queries import (
    FILTERS,
    FROM,
    RANGE,
    TO,
    corpus,
    event_dt,
    in_range,
    value_of,
)


@pytest.fixture
def loaded(alert_store: Any) -> tuple[Any, list[Alert]]:
    alerts = corpus()
    commit_in_batches(alert_store, alerts)
    return alert_store, alerts


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_new_filter_alone_and_with_a_range(loaded: tuple[Any, list[Alert]], name: str) -> None:
    alert_store, alerts = loaded
    kwargs, keep = FILTERS[name]
    newest_first = sorted(alerts, key=event_dt, reverse=True)
    expected = [a.id for a in newest_first if keep(a)]
    if name != "mitre prefix is not a match":
        assert 0 < len(expected) < len(alerts), "the corpus must make this filter discriminate"
    assert ids_of(alert_store, **kwargs) == expected
    assert ids_of(alert_store, **kwargs, **RANGE) == [
        a.id for a in newest_first if keep(a) and in_range(a)
    ]


def test_stats_with_filters_and_top_n(loaded: tuple[Any, list[Alert]]) -> None:
    alert_store, alerts = loaded
    iam = [a for a in alerts if a.event_source == "iam.amazonaws.com" and in_range(a)]
    result = alert_store.stats(
        build_stats_query(by="event-name", top=2, event_source="iam.amazonaws.com", **RANGE)
    )
    expected = Counter(a.event_name for a in iam).most_common()
    assert [(b.key, b.count) for b in result.buckets] == sorted(
        expected, key=lambda kv: (-kv[1], kv[0])
    )[:2]
    assert result.total == len(iam)
    assert result.other == len(iam) - sum(b.count for b in result.buckets) > 0
    detections = alert_store.stats(build_stats_query(by="rule", min_level=5))
    assert {b.key for b in detections.buckets} == {"80250", "80255"}
    assert {b.label for b in detections.buckets} == {"AWS CloudTrail: ConsoleLogin"}


def test_series_with_filter_is_the_filtered_count(
    loaded: tuple[Any, list[Alert]],
) -> None:
    alert_store, alerts = loaded
    q = build_series_query(
        interval="1d", split="rule", event_source="iam.amazonaws.com", top=10, **RANGE
    )
    result = alert_store.series(q)
    iam = [a for a in alerts if a.event_source == "iam.amazonaws.com" and in_range(a)]
    assert result.total == len(iam)
    assert {g.key: g.total for g in result.groups} == dict(Counter(a.rule.id for a in iam))
    assert not any(g.is_other for g in result.groups)


def test_backfill_shows_under_event_time_and_arrival_on_the_switch(alert_store: Any) -> None:
    now = datetime.now(UTC)
    week_ago = now - timedelta(days=7)
    backfilled = make_alert(when=now - timedelta(minutes=2), event_time=week_ago.isoformat())
    live = make_alert(when=now - timedelta(minutes=1))
    no_time = make_alert(when=now - timedelta(minutes=3), event_time="")
    alert_store.commit(
        [event_for(a) for a in (backfilled, live, no_time)], [backfilled, live, no_time]
    )
    # Event time (default): last week's record is under last week, not in the last day.
    # (no eventTime: placed at its arrival, 3 min ago; the live one happened 6 min ago)
    assert ids_of(alert_store, since="24h") == [no_time.id, live.id]
    last_week = {
        "from_time": (week_ago - timedelta(hours=1)).isoformat(),
        "to_time": (week_ago + timedelta(hours=1)).isoformat(),
    }
    assert ids_of(alert_store, **last_week) == [backfilled.id]
    assert alert_store.stats(build_stats_query(by="rule", **last_week)).total == 1
    day = alert_store.series(build_series_query(since="24h", interval="1h"))
    assert day.total == 2
    # Arrival: all three arrived in the last minutes.
    assert ids_of(alert_store, since="24h", time_basis="arrival") == [
        live.id,
        backfilled.id,
        no_time.id,
    ]
    assert (
        alert_store.stats(build_stats_query(by="rule", since="24h", time_basis="arrival")).total
        == 3
    )
    assert ids_of(alert_store, time_basis="arrival", **last_week) == []
    # No eventTime: placed at its arrival time on the event axis too.
    (got,) = [
        a for a in alert_store.query(build_alert_query(since="1h")).alerts if a.id == no_time.id
    ]
    assert got.event_time == ""


def test_paging_by_event_time_is_stable_while_alerts_arrive(alert_store: Any) -> None:
    first = [make_alert(when=BASE_TIME - timedelta(minutes=m)) for m in range(40)]
    alert_store.commit([event_for(a) for a in first], first)
    seen: list[str] = []
    token = ""
    for round_ in range(10):
        page = alert_store.query(build_alert_query(limit=7, page_token=token))
        seen.extend(a.id for a in page.alerts)
        # Newer alerts (and older backfilled ones) arriving between pages change nothing.
        extra = [
            make_alert(when=BASE_TIME + timedelta(minutes=round_ + 1)),
            make_alert(when=BASE_TIME - timedelta(days=3, minutes=round_)),
        ]
        alert_store.commit([event_for(a) for a in extra], extra)
        token = page.next_page_token
        if not token:
            break
    older = [a.id for a in alert_store.query(build_alert_query(limit=1000)).alerts]
    assert seen[:40] == [a.id for a in first]  # newest event time first, each once
    assert len(set(seen)) == len(seen)
    assert set(older) >= set(seen)


@pytest.mark.parametrize("by", [f for f in StatsField if not f.is_time], ids=lambda f: f.value)
@pytest.mark.parametrize("ranged", [False, True], ids=["all", "mid-hour range"])
def test_stats_by_every_field_match_python(
    loaded: tuple[Any, list[Alert]], by: StatsField, ranged: bool
) -> None:
    alert_store, alerts = loaded
    kept = [a for a in alerts if in_range(a)] if ranged else alerts
    expected = Counter(v for a in kept for v in value_of(by, a))
    q = build_stats_query(by=by.value, **(RANGE if ranged else {}))
    result = alert_store.stats(q)
    assert {b.key: b.count for b in result.buckets} == dict(expected)
    assert result.total == len(kept) and result.other == 0
    assert [b.count for b in result.buckets] == sorted(expected.values(), reverse=True)


def test_stats_by_country_sum_the_addresses_of_each_country(
    loaded: tuple[Any, list[Alert]],
) -> None:
    """``stats --by country`` on either backend: counted from the source addresses, two US
    addresses under one key, private and service addresses under their bracketed keys."""
    alert_store, alerts = loaded
    by_ip = Counter(a.source_ip for a in alerts if in_range(a))
    result = alert_store.stats(build_stats_query(by="country", **RANGE))
    assert {b.key: b.count for b in result.buckets} == {
        "United States": by_ip["8.8.8.8"] + by_ip["8.8.4.4"],
        "(private)": by_ip["198.51.100.4"] + by_ip["10.0.0.1"],
        "United Kingdom": by_ip["81.2.69.160"],
        "(service)": by_ip["s3.amazonaws.com"],
    }
    top = alert_store.stats(build_stats_query(by="country", top=1, **RANGE))
    assert [b.key for b in top.buckets] == [result.buckets[0].key]
    assert top.other == sum(by_ip.values()) - result.buckets[0].count


@pytest.mark.parametrize("by", ["hour", "day"])
def test_stats_by_hour_and_day(loaded: tuple[Any, list[Alert]], by: str) -> None:
    alert_store, alerts = loaded
    fmt = "%Y-%m-%dT%H:00Z" if by == "hour" else "%Y-%m-%d"
    expected = Counter(event_dt(a).strftime(fmt) for a in alerts if in_range(a))
    q = build_stats_query(by=by, **RANGE)
    result = alert_store.stats(q)
    assert [(b.key, b.count) for b in result.buckets] == sorted(expected.items())


@pytest.mark.parametrize("interval", ["15m", "1h", "3h", "1d"])
@pytest.mark.parametrize("split", ["", "rule", "mitre"])
def test_series_buckets_split_and_other(
    loaded: tuple[Any, list[Alert]], interval: str, split: str
) -> None:
    alert_store, alerts = loaded
    q = build_series_query(interval=interval, split=split, top=2, **RANGE)
    result = alert_store.series(q)
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
