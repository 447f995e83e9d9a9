"""Stats and series assembled from grouped counts, for any backend.

A backend supplies two functions: ``count`` — alerts per (time bucket, field value) for a filter,
the one query it must make fast — and ``label`` — a readable name beside a key. Ordering, the
top-N cut, the "other" group, multi-valued fields (MITRE, groups stored as ``,a,b,`` text) and
empty buckets are done here once, so every backend answers ``stats`` and ``series`` alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from trailwarden.manager.store.base import (
    OTHER_GROUP,
    AlertFilter,
    SeriesGroup,
    SeriesQuery,
    SeriesResult,
    StatsBucket,
    StatsField,
    StatsQuery,
    StatsResult,
)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

Grouped = dict[tuple[int | None, Any], int]
"""``(bucket index or None, value or None) → alerts``; bucket index = time ms // bucket ms."""
Count = Callable[[AlertFilter, StatsField | None, int | None], Grouped]
"""``count(filter, field, bucket_ms)``: the backend's grouped count."""
Label = Callable[[StatsField, str], str]
"""``label(field, key)``: e.g. the newest description of a rule; '' for none."""


def split_tags(text: str) -> list[str]:
    """The values of a ``,a,b,`` column."""
    return [part for part in text.split(",") if part]


def expand(counts: Mapping[tuple[int | None, Any], int], field: StatsField | None) -> Grouped:
    """For MITRE and groups: one entry per value inside each ``,a,b,`` text (an alert with two
    techniques counts under both; one with none under neither). Other fields: unchanged."""
    if field is None or not field.multi_valued:
        return dict(counts)
    out: defaultdict[tuple[int | None, Any], int] = defaultdict(int)
    for (bucket, text), n in counts.items():
        for value in split_tags(str(text or "")):
            out[(bucket, value)] += n
    return dict(out)


def time_key(ms: int, by: StatsField) -> str:
    """``2026-11-26T15:00Z`` for an hour, ``2026-11-26`` for a day."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:00Z" if by is StatsField.HOUR else "%Y-%m-%d")


def stats_result(q: StatsQuery, count: Count, label: Label) -> StatsResult:
    """Counts of the alerts ``q.filter`` keeps, grouped by ``q.by``, largest first."""
    if q.by.is_time:
        size = HOUR_MS if q.by is StatsField.HOUR else DAY_MS
        times = sorted((bucket or 0, n) for (bucket, _), n in count(q.filter, None, size).items())
        buckets = [StatsBucket(time_key(bucket * size, q.by), "", n) for bucket, n in times]
        return StatsResult(by=q.by, buckets=buckets, total=sum(b.count for b in buckets))
    raw = count(q.filter, q.by, None)
    values = sorted(
        ((str(value), n) for (_, value), n in expand(raw, q.by).items()),
        key=lambda item: (-item[1], item[0]),
    )
    kept = values[: q.top] if q.top else values
    other = sum(n for _, n in values[len(kept) :])
    buckets = [StatsBucket(key, label(q.by, key), n) for key, n in kept]
    return StatsResult(by=q.by, buckets=buckets, total=sum(raw.values()), other=other)


def series_result(q: SeriesQuery, count: Count, label: Label) -> SeriesResult:
    """Counts per bucket of ``q.interval_seconds`` over the range, split by ``q.split``."""
    if q.filter.start is None or q.filter.end is None:
        raise ValueError("a SeriesQuery always has a start and an end (store.query sets them)")
    size = q.interval_seconds * 1000
    first = int(q.filter.start.timestamp() * 1000) // size
    last = (int(q.filter.end.timestamp() * 1000) - 1) // size
    buckets = max(0, last - first + 1)
    starts = tuple(
        datetime.fromtimestamp((first + i) * size / 1000, tz=UTC) for i in range(buckets)
    )
    raw = count(q.filter, q.split, size)
    per_value: defaultdict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    for (bucket, value), n in expand(raw, q.split).items():
        index = (bucket or 0) - first
        if 0 <= index < buckets:
            per_value["" if q.split is None else str(value)][index] += n
    total = sum(raw.values())
    if q.split is None:
        counts = per_value.get("", [0] * buckets)
        return SeriesResult(
            q.interval_seconds, starts, [SeriesGroup("", "", tuple(counts))], None, total
        )
    ranked = sorted(per_value.items(), key=lambda item: (-sum(item[1]), item[0]))
    groups = [
        SeriesGroup(key, label(q.split, key), tuple(counts)) for key, counts in ranked[: q.top]
    ]
    rest = ranked[q.top :]
    if rest:
        other = [sum(column) for column in zip(*(counts for _, counts in rest), strict=True)]
        groups.append(SeriesGroup(OTHER_GROUP, "", tuple(other), is_other=True))
    return SeriesResult(q.interval_seconds, starts, groups, q.split, total)
