"""Alert counts grouped by one field or by hour/day (``SqliteAlertStore.stats``).

Counting is ``aggregate.grouped`` (rollups when unfiltered on event time, indexed scans
otherwise); ordering, the top-N cut and labels are ``store/grouping.py``, shared with every
backend.
"""

from __future__ import annotations

import sqlite3

from trailwarden.manager.store.base import AlertFilter, StatsField, StatsQuery, StatsResult
from trailwarden.manager.store.grouping import Count, Grouped, Label, stats_result, time_key
from trailwarden.manager.store.sqlite.aggregate import grouped, label
from trailwarden.manager.store.sqlite.piece_cache import PieceCache

__all__ = ["alert_stats", "counting", "time_key"]


def alert_stats(
    conn: sqlite3.Connection,
    q: StatsQuery,
    *,
    use_rollup: bool = True,
    cache: PieceCache | None = None,
) -> StatsResult:
    """Counts of the alerts ``q.filter`` keeps, grouped by ``q.by`` (``cache``: see
    ``aggregate.grouped``)."""
    return stats_result(q, *counting(conn, use_rollup, cache))


def counting(
    conn: sqlite3.Connection, use_rollup: bool, cache: PieceCache | None = None
) -> tuple[Count, Label]:
    """The ``count`` and ``label`` of ``store/grouping.py`` on this connection, counting
    through the store's kept pieces when given ``cache``."""

    def count(flt: AlertFilter, field: StatsField | None, bucket_ms: int | None) -> Grouped:
        return grouped(conn, flt, field, bucket_ms, use_rollup=use_rollup, cache=cache)

    return count, lambda field, key: label(conn, field, key)
