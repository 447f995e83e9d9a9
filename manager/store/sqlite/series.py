"""Time series for stacked charts (``SqliteAlertStore.series``): every bucket of the range,
empty ones included, one count per bucket per group; the top groups by their total over the
range, and every other value summed into one "other" group."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import UTC, datetime

from trailwarden.manager.store.base import (
    OTHER_GROUP,
    SeriesGroup,
    SeriesQuery,
    SeriesResult,
)
from trailwarden.manager.store.sqlite.aggregate import expand, grouped, label
from trailwarden.manager.store.sqlite.filters import to_ms
from trailwarden.manager.store.sqlite.piece_cache import PieceCache


def alert_series(
    conn: sqlite3.Connection,
    q: SeriesQuery,
    *,
    use_rollup: bool = True,
    cache: PieceCache | None = None,
) -> SeriesResult:
    """Counts per bucket of ``q.interval_seconds`` over the range, split by ``q.split``
    (``cache``: see ``aggregate.grouped``)."""
    if q.filter.start is None or q.filter.end is None:
        raise ValueError("a SeriesQuery always has a start and an end (store.query sets them)")
    size = q.interval_seconds * 1000
    first = to_ms(q.filter.start) // size
    last = (to_ms(q.filter.end) - 1) // size
    count = max(0, last - first + 1)
    starts = tuple(datetime.fromtimestamp((first + i) * size / 1000, tz=UTC) for i in range(count))
    raw = grouped(conn, q.filter, q.split, size, use_rollup=use_rollup, cache=cache)
    total = sum(raw.values())
    per_value: defaultdict[str, list[int]] = defaultdict(lambda: [0] * count)
    for (bucket, value), n in expand(raw, q.split).items():
        index = (bucket or 0) - first
        if 0 <= index < count:
            per_value["" if q.split is None else str(value)][index] += n
    if q.split is None:
        counts = per_value.get("", [0] * count)
        return SeriesResult(
            q.interval_seconds, starts, [SeriesGroup("", "", tuple(counts))], None, total
        )
    ranked = sorted(per_value.items(), key=lambda item: (-sum(item[1]), item[0]))
    groups = [
        SeriesGroup(key, label(conn, q.split, key), tuple(counts))
        for key, counts in ranked[: q.top]
    ]
    rest = ranked[q.top :]
    if rest:
        other = [sum(column) for column in zip(*(counts for _, counts in rest), strict=True)]
        groups.append(SeriesGroup(OTHER_GROUP, "", tuple(other), is_other=True))
    return SeriesResult(q.interval_seconds, starts, groups, q.split, total)
