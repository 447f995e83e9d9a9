"""Alert counts grouped by one field or by hour/day (``SqliteAlertStore.stats``).

Counting is ``aggregate.grouped`` (rollups when unfiltered on event time, indexed scans
otherwise); ordering, the top-N cut and labels are ``store/grouping.py``, shared with every
backend.
"""

from __future__ import annotations

import sqlite3

from trailwarden.manager.store.base import StatsQuery, StatsResult
from trailwarden.manager.store.grouping import Count, Label, stats_result, time_key
from trailwarden.manager.store.sqlite.aggregate import grouped, label

__all__ = ["alert_stats", "counting", "time_key"]


def alert_stats(conn: sqlite3.Connection, q: StatsQuery, *, use_rollup: bool = True) -> StatsResult:
    """Counts of the alerts ``q.filter`` keeps, grouped by ``q.by``."""
    return stats_result(q, *counting(conn, use_rollup))


def counting(conn: sqlite3.Connection, use_rollup: bool) -> tuple[Count, Label]:
    """The ``count`` and ``label`` of ``store/grouping.py`` on this connection."""
    return (
        lambda flt, field, bucket_ms: grouped(conn, flt, field, bucket_ms, use_rollup=use_rollup),
        lambda field, key: label(conn, field, key),
    )
