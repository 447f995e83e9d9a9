"""The kept sums of whole-hour pieces (``sqlite/piece_cache.py``) stay exact, for the rollup
rows of unfiltered questions and for the alerts a filter keeps.

Every answer given from a kept piece is compared with a scan of the alerts themselves
(``use_rollup=False``) and with counts made here in Python, after each way the alerts of kept
hours can change: a live commit, a backfill into a day in the middle of the range, a resent
batch, retention, and a commit that lands while a piece is being summed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.base import StatsField
from trailwarden.manager.store.query import build_series_query, build_stats_query
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite import rollup
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.store.sqlite.piece_cache import PieceCache
from trailwarden.manager.store.sqlite.series import alert_series
from trailwarden.manager.store.sqlite.stats import alert_stats

from .factory import event_for, make_alert

NOW = datetime.now(UTC).replace(microsecond=0)
FROM = NOW - timedelta(days=5, hours=2, minutes=13)
TO = NOW - timedelta(minutes=7)
FIELDS = ("source-ip", "user", "rule", "level", "account")


def week(start: datetime, count: int, *, tag: str = "") -> list[Alert]:
    """``count`` alerts every 37 minutes from ``start``: many addresses, few users."""
    return [
        make_alert(
            when=start + timedelta(minutes=37 * i),
            source_ip=f"198.51.{i % 7}.{i % 41}{tag}",
            user=("alice", "bob", "carol")[i % 3],
            rule_id=("80202", "80203", "80250")[i % 3],
            level=(3, 5, 12)[i % 3],
            account=("111111111111", "222222222222")[i % 2],
        )
        for i in range(count)
    ]


def commit(store: SqliteAlertStore, alerts: list[Alert]) -> int:
    return store.commit([event_for(a) for a in alerts], alerts)


def python_counts(alerts: list[Alert], by: str) -> Counter[str]:
    value = {
        "source-ip": lambda a: a.source_ip,
        "user": lambda a: a.user,
        "rule": lambda a: a.rule.id,
        "level": lambda a: str(a.rule.level),
        "account": lambda a: a.account,
    }[by]
    return Counter(value(a) for a in alerts if FROM <= datetime.fromisoformat(a.event_time) < TO)


FILTERS: dict[str, tuple[dict[str, Any], Callable[[Alert], bool]]] = {
    "none": ({}, lambda a: True),
    "account": ({"account": "222222222222"}, lambda a: a.account == "222222222222"),
    "min level": ({"min_level": 5}, lambda a: a.rule.level >= 5),
    "user and level": (
        {"user": "bob", "min_level": 4},
        lambda a: a.user == "bob" and a.rule.level >= 4,
    ),
}
"""No filter (rollup rows kept) and filters the rollups cannot answer (scans kept by day)."""


def check(database: Database, cache: PieceCache, stored: list[Alert]) -> None:
    """Every field, filtered or not, top 3 and every group, and a filtered series: the cached
    answer is the uncached scan's and Python's."""
    conn = database.connection()
    window = {"from_time": FROM.isoformat(), "to_time": TO.isoformat()}
    for name, (given, keeps) in FILTERS.items():
        kept = [a for a in stored if keeps(a)]
        for by in FIELDS:
            for top in (0, 3):
                q = build_stats_query(by=by, top=top, **window, **given)
                result = alert_stats(conn, q, cache=cache)
                assert result == alert_stats(conn, q, use_rollup=False), (name, by, top)
                expected = python_counts(kept, by)
                assert result.total == sum(expected.values())
                if not top:
                    assert {b.key: b.count for b in result.buckets} == dict(expected), by
        series = build_series_query(interval="1h", split="user", **window, **given)
        assert alert_series(conn, series, cache=cache) == alert_series(
            conn, series, use_rollup=False
        ), name


def test_kept_pieces_follow_commits_backfills_and_retention(database: Database) -> None:
    store = SqliteAlertStore(database, retention=RetentionPolicy(alerts_days=4))
    cache = PieceCache()
    stored = week(NOW - timedelta(days=6), 230)
    assert commit(store, stored) == 230
    check(database, cache, stored)
    misses = cache.misses
    check(database, cache, stored)
    assert cache.hits > 0 and cache.misses == misses, "nothing changed: every piece is reused"

    live = week(NOW - timedelta(minutes=50), 1, tag="9")  # into the minutes at the end
    backfill = week(NOW - timedelta(days=3, hours=5), 4, tag="8")  # a whole day in the middle
    assert commit(store, live + backfill) == 5
    stored += live + backfill
    check(database, cache, stored)
    assert commit(store, backfill) == 0  # resent: nothing stored, and nothing may change
    check(database, cache, stored)

    removed = store.prune(NOW).alerts_by_age
    assert removed > 0
    cutoff = NOW - timedelta(days=4)
    stored = [a for a in stored if datetime.fromisoformat(a.event_time) >= cutoff]
    check(database, cache, stored)


def test_a_commit_while_a_piece_is_summed_is_not_kept(
    store: SqliteAlertStore, database: Database
) -> None:
    stored = week(NOW - timedelta(days=6), 100)
    commit(store, stored)
    conn = database.connection()
    cache = PieceCache()
    day = NOW.replace(hour=0, minute=0, second=0) - timedelta(days=2)
    lo = int(day.timestamp() * 1000)
    span = (lo, lo + rollup.DAY_MS)
    late = week(day + timedelta(hours=3), 1, tag="7")

    def sum_while_a_commit_lands() -> dict[tuple[int | None, object], int]:
        commit(store, late)
        return {(None, "stale"): 1}

    assert cache.values(conn, "piece", span, sum_while_a_commit_lands) == {(None, "stale"): 1}
    fresh = {(None, "fresh"): 2}
    assert cache.values(conn, "piece", span, lambda: fresh) is fresh, "stale sum was kept"
    assert cache.values(conn, "piece", span, lambda: {}) is fresh, "unchanged: kept"


def test_a_store_from_before_the_change_counters_is_exact_too(database: Database) -> None:
    # A store written before ``CHANGES_CODE`` existed has no counter rows: kept pieces must
    # still be dropped when its hours change (the first commit creates the counter).
    store = SqliteAlertStore(database)
    stored = week(NOW - timedelta(days=6), 200)
    commit(store, stored)
    conn = database.connection()
    with database.transaction() as tx:
        tx.execute("DELETE FROM alert_counts WHERE field = ?", (rollup.CHANGES_CODE,))
    cache = PieceCache()
    check(database, cache, stored)
    backfill = week(NOW - timedelta(days=2, hours=7), 3, tag="6")
    commit(store, backfill)
    check(database, cache, stored + backfill)
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM alert_counts WHERE field = ?", (rollup.CHANGES_CODE,)
        ).fetchone()[0]
        > 0
    )


@pytest.mark.parametrize("max_values", [0, 5])
def test_the_cache_holds_at_most_its_bound(
    store: SqliteAlertStore, database: Database, max_values: int
) -> None:
    commit(store, week(NOW - timedelta(days=6), 120))
    cache = PieceCache(max_values)
    conn = database.connection()
    q = build_stats_query(by=StatsField.SOURCE_IP.value, from_time=FROM.isoformat())
    first = alert_stats(conn, q, cache=cache)
    assert alert_stats(conn, q, cache=cache) == first == alert_stats(conn, q, use_rollup=False)
    assert cache.held <= max_values


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_values must be >= 0"):
        PieceCache(-1)
