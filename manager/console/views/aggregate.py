"""Counts and time series for the overview panels, read through the ``AlertStore`` protocol.

The store answers ``stats`` for a time range grouped by one field. When it offers what a panel
needs — grouping by that field under the panel's filters (``stats_filtered``), and time series
(``series``) — the panel is one store call. Otherwise the panel walks the matching alerts page
by page through ``store.query`` (the same validated ``AlertQuery`` as the alerts table) and
counts them here, up to ``SCAN_LIMIT`` alerts; a result built from fewer alerts than the range
holds says so (``partial``), so no panel silently under-counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trailwarden.manager.store.base import AlertQuery, AlertStore, StoredAlert

SCAN_LIMIT = 200_000
"""The most alerts one panel walks when the store cannot group them itself."""
SCAN_PAGE = 5_000
"""Alerts per page while walking (within the store's MAX_LIMIT)."""
TOP_KEYS = 10
"""Slices of a pie / stacks of an area chart; the rest are summed as ``(other)``."""
OTHER = "(other)"
STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
"""Time-series step sizes in seconds; the smallest giving at most ``MAX_POINTS`` points."""
MAX_POINTS = 120


def _json_path(*path: str) -> Callable[[StoredAlert], str]:
    def read(alert: StoredAlert) -> str:
        node: Any = json.loads(alert.json)
        for part in ("data", "aws", *path):
            if not isinstance(node, dict):
                return ""
            node = node.get(part)
        return "" if node is None else str(node)

    return read


FIELDS: dict[str, Callable[[StoredAlert], str]] = {
    "rule": lambda a: a.rule_id,
    "level": lambda a: str(a.level),
    "agent": lambda a: a.agent_id,
    "account": lambda a: a.account,
    "region": lambda a: a.region,
    "user": lambda a: a.user,
    "event": lambda a: a.event_name,
    "service": lambda a: a.event_source,
    "ip": lambda a: a.source_ip,
    "source": _json_path("source"),
    "bucket": _json_path("log_info", "s3bucket"),
    "error": _json_path("errorCode"),
}
"""Panel grouping fields (named like the URL filters) and how to read them off an alert."""

_LABELS: dict[str, Callable[[StoredAlert], str]] = {
    "rule": lambda a: a.description,
    "agent": lambda a: a.agent_name,
}


@dataclass(slots=True)
class Counts:
    """Alerts per value of one field, largest first."""

    buckets: list[dict[str, Any]]
    total: int
    """Alerts counted (all of them unless ``partial``)."""
    partial: bool = False


@dataclass(slots=True)
class Series:
    """Alerts per step and per value of one field (the ``TOP_KEYS`` largest, then other)."""

    step_seconds: int
    times: list[str]
    """Each step's start, RFC 3339 UTC."""
    stacks: dict[str, list[int]] = field(default_factory=dict)
    total: int = 0
    partial: bool = False


def walk(store: AlertStore, q: AlertQuery, limit: int = SCAN_LIMIT) -> Iterator[StoredAlert]:
    """Every alert matching ``q``, newest first, at most ``limit`` (page by page)."""
    page_query = replace(q, limit=min(SCAN_PAGE, limit), page_token="")
    seen = 0
    while True:
        page = store.query(page_query)
        for alert in page.alerts:
            yield alert
            seen += 1
            if seen >= limit:
                return
        if not page.next_page_token:
            return
        page_query = replace(page_query, page_token=page.next_page_token)


def counts(store: AlertStore, q: AlertQuery, by: str, top: int = TOP_KEYS) -> Counts:
    """Alerts matching ``q`` grouped by ``by`` (a key of ``FIELDS``)."""
    read = FIELDS[by]
    label_of = _LABELS.get(by)
    tally: Counter[str] = Counter()
    labels: dict[str, str] = {}
    scanned = 0
    for alert in walk(store, q, SCAN_LIMIT + 1):
        scanned += 1
        if scanned > SCAN_LIMIT:
            break
        key = read(alert)
        tally[key] += 1
        if label_of is not None and key not in labels:
            labels[key] = label_of(alert)  # newest first: the newest alert's label
    ordered = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    buckets = [{"key": k, "label": labels.get(k, ""), "count": c} for k, c in ordered[:top]]
    rest = sum(c for _, c in ordered[top:])
    if rest:
        buckets.append({"key": OTHER, "label": "", "count": rest, "other": True})
    return Counts(buckets, sum(tally.values()), partial=scanned > SCAN_LIMIT)


def step_for(span_seconds: float) -> int:
    for step in STEPS:
        if span_seconds / step <= MAX_POINTS:
            return step
    return STEPS[-1]


def series(
    store: AlertStore,
    q: AlertQuery,
    by: str,
    start: datetime | None,
    end: datetime,
    top: int = TOP_KEYS,
) -> Series:
    """Alerts matching ``q`` per time step and per value of ``by``, oldest step first."""
    read = FIELDS[by]
    alerts = list(walk(store, q, SCAN_LIMIT + 1))
    partial = len(alerts) > SCAN_LIMIT
    alerts = alerts[:SCAN_LIMIT]
    begin = start.timestamp() if start else min((_ts(a) for a in alerts), default=end.timestamp())
    step = step_for(end.timestamp() - begin)
    first = int(begin // step) * step
    points = max(1, int((end.timestamp() - first) // step) + 1)
    tally: Counter[str] = Counter(read(a) for a in alerts)
    keep = {k for k, _ in sorted(tally.items(), key=lambda i: (-i[1], i[0]))[:top]}
    stacks: dict[str, list[int]] = {}
    for alert in alerts:
        key = read(alert)
        key = key if key in keep else OTHER
        index = min(points - 1, max(0, int((_ts(alert) - first) // step)))
        stacks.setdefault(key, [0] * points)[index] += 1
    times = [
        datetime.fromtimestamp(first + i * step, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for i in range(points)
    ]
    return Series(step, times, stacks, len(alerts), partial)


def _ts(alert: StoredAlert) -> float:
    return datetime.fromisoformat(alert.timestamp.replace("Z", "+00:00")).timestamp()
