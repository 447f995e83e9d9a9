"""Time series for stacked charts (``SqliteAlertStore.series``): every bucket of the range,
empty ones included, one count per bucket per group; the top groups by their total over the
range, and every other value summed into one "other" group (assembled by
``store/grouping.py``, shared with every backend, from this backend's counts)."""

from __future__ import annotations

import sqlite3

from trailwarden.manager.store.base import SeriesQuery, SeriesResult
from trailwarden.manager.store.grouping import series_result
from trailwarden.manager.store.sqlite.piece_cache import PieceCache
from trailwarden.manager.store.sqlite.stats import counting


def alert_series(
    conn: sqlite3.Connection,
    q: SeriesQuery,
    *,
    use_rollup: bool = True,
    cache: PieceCache | None = None,
) -> SeriesResult:
    """Counts per bucket of ``q.interval_seconds`` over the range, split by ``q.split``
    (``cache``: see ``aggregate.grouped``)."""
    return series_result(q, *counting(conn, use_rollup, cache))
