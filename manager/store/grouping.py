"""Stats and series assembled from grouped counts, for any backend.

A backend supplies two functions: ``count`` — alerts per (time bucket, field value) for a filter,
the one query it must make fast — and ``label`` — a readable name beside a key. Ordering, the
top-N cut, the "other" group, multi-valued fields (MITRE, groups stored as ``,a,b,`` text) and
empty buckets are done here once, so every backend answers ``stats`` and ``series`` alike.
"""

from __future__ import annotations

import operator
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
"""``(bucket index or None, value as text or None) → alerts``; bucket index = time ms // bucket
ms. Values are text on every backend (a level too), as the keys of a result are."""
Count = Callable[[AlertFilter, StatsField | None, int | None], Grouped]
"""``count(filter, field, bucket_ms)``: the backend's grouped count."""
Label = Callable[[StatsField, str], str]
"""``label(field, key)``: e.g. the newest description of a rule; '' for none."""
LABEL_COLUMNS: dict[StatsField, tuple[str, str]] = {
    StatsField.RULE: ("rule_id", "description"),
    StatsField.AGENT: ("agent_id", "agent_name"),
}
"""The fields a backend's ``label`` names: the alerts column of the key and of its label (the
same columns on every engine). Every other field's label is '' and is not asked for."""


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
    """Counts of the alerts ``q.filter`` keeps, grouped by ``q.by``, largest first (ties by
    key); beyond ``q.top``, the rest summed into ``other``."""
    if q.by.is_time:
        size = HOUR_MS if q.by is StatsField.HOUR else DAY_MS
        times = sorted((bucket or 0, n) for (bucket, _), n in count(q.filter, None, size).items())
        buckets = [StatsBucket(time_key(bucket * size, q.by), "", n) for bucket, n in times]
        return StatsResult(by=q.by, buckets=buckets, total=sum(b.count for b in buckets))
    raw = count(q.filter, q.by, None)
    counted = expand(raw, q.by)
    # Values are text already (``Count``'s contract), so no str() per value.
    values = list(zip(map(_SECOND, counted), counted.values(), strict=True))
    # For a top N of tens of thousands of addresses only the values at or above the N-th
    # largest count are ranked (the counts alone sort in C, with no key function).
    if q.top and q.top < len(values):
        least = sorted(counted.values(), reverse=True)[q.top - 1]
        values = [item for item in values if item[1] >= least]
    values.sort(key=_FIRST)  # stable: by key, then by count, so ties stay in key order
    values.sort(key=_SECOND, reverse=True)
    kept = values[: q.top] if q.top else values
    other = sum(counted.values()) - sum(n for _, n in kept) if q.top else 0
    if q.by in LABEL_COLUMNS:
        buckets = [StatsBucket(key, label(q.by, key), n) for key, n in kept]
    else:  # tens of thousands of addresses: no lookup per bucket, whose label is '' anyway
        buckets = [StatsBucket(key, "", n) for key, n in kept]
    return StatsResult(by=q.by, buckets=buckets, total=sum(raw.values()), other=other)


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)


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
