"""Alert counts grouped by one field or by hour/day (``SqliteAlertStore.stats``).

Counting is ``aggregate.grouped`` (rollups when unfiltered on event time, indexed scans
otherwise); here the groups are ordered, cut to the top N and labelled.
"""

from __future__ import annotations

import operator
import sqlite3
from datetime import UTC, datetime

from trailwarden.manager.store.base import StatsBucket, StatsField, StatsQuery, StatsResult
from trailwarden.manager.store.sqlite import rollup
from trailwarden.manager.store.sqlite.aggregate import expand, grouped, has_labels, label
from trailwarden.manager.store.sqlite.piece_cache import PieceCache


def alert_stats(
    conn: sqlite3.Connection,
    q: StatsQuery,
    *,
    use_rollup: bool = True,
    cache: PieceCache | None = None,
) -> StatsResult:
    """Counts of the alerts ``q.filter`` keeps, grouped by ``q.by`` (``cache``: see
    ``aggregate.grouped``)."""
    if q.by.is_time:
        size = rollup.HOUR_MS if q.by is StatsField.HOUR else rollup.DAY_MS
        counts = grouped(conn, q.filter, None, size, use_rollup=use_rollup)
        times = sorted((bucket or 0, n) for (bucket, _), n in counts.items())
        buckets = [StatsBucket(time_key(bucket * size, q.by), "", n) for bucket, n in times]
        return StatsResult(by=q.by, buckets=buckets, total=sum(b.count for b in buckets))
    raw = grouped(conn, q.filter, q.by, None, use_rollup=use_rollup, cache=cache)
    total = sum(raw.values())
    counted = expand(raw, q.by)
    # Values are text already (the rollup's TEXT column; scans turn them into text).
    values = list(zip(map(_SECOND, counted), counted.values(), strict=True))
    # Largest first, ties by key. For a top N of tens of thousands of addresses only the
    # values at or above the N-th largest count are ranked (the counts sort in C).
    if q.top and q.top < len(values):
        least = sorted(counted.values(), reverse=True)[q.top - 1]
        values = [item for item in values if item[1] >= least]
    values.sort(key=_FIRST)
    values.sort(key=_SECOND, reverse=True)
    kept = values[: q.top] if q.top else values
    other = sum(counted.values()) - sum(n for _, n in kept) if q.top else 0
    if has_labels(q.by):
        buckets = [StatsBucket(key, label(conn, q.by, key), n) for key, n in kept]
    else:  # tens of thousands of addresses: no lookup per bucket
        buckets = [StatsBucket(key, "", n) for key, n in kept]
    return StatsResult(by=q.by, buckets=buckets, total=total, other=other)


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)


def time_key(ms: int, by: StatsField) -> str:
    """``2026-11-26T15:00Z`` for an hour, ``2026-11-26`` for a day."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:00Z" if by is StatsField.HOUR else "%Y-%m-%d")
