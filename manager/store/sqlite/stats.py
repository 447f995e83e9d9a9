"""Alert counts grouped by one field or by hour/day (``SqliteAlertStore.stats``).

Counting is ``aggregate.grouped`` (rollups when unfiltered on event time, indexed scans
otherwise); here the groups are ordered, cut to the top N and labelled.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from trailwarden.manager.store.base import StatsBucket, StatsField, StatsQuery, StatsResult
from trailwarden.manager.store.sqlite import rollup
from trailwarden.manager.store.sqlite.aggregate import expand, grouped, label


def alert_stats(conn: sqlite3.Connection, q: StatsQuery, *, use_rollup: bool = True) -> StatsResult:
    """Counts of the alerts ``q.filter`` keeps, grouped by ``q.by``."""
    if q.by.is_time:
        size = rollup.HOUR_MS if q.by is StatsField.HOUR else rollup.DAY_MS
        counts = grouped(conn, q.filter, None, size, use_rollup=use_rollup)
        times = sorted((bucket or 0, n) for (bucket, _), n in counts.items())
        buckets = [StatsBucket(time_key(bucket * size, q.by), "", n) for bucket, n in times]
        return StatsResult(by=q.by, buckets=buckets, total=sum(b.count for b in buckets))
    raw = grouped(conn, q.filter, q.by, None, use_rollup=use_rollup)
    total = sum(raw.values())
    values = sorted(
        ((str(value), n) for (_, value), n in expand(raw, q.by).items()),
        key=lambda item: (-item[1], item[0]),
    )
    kept = values[: q.top] if q.top else values
    other = sum(n for _, n in values[len(kept) :])
    buckets = [StatsBucket(key, label(conn, q.by, key), n) for key, n in kept]
    return StatsResult(by=q.by, buckets=buckets, total=total, other=other)


def time_key(ms: int, by: StatsField) -> str:
    """``2026-11-26T15:00Z`` for an hour, ``2026-11-26`` for a day."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:00Z" if by is StatsField.HOUR else "%Y-%m-%d")
