"""The console's URL query → the store's validated alert, stats and series queries.

Every page keeps its state in the URL (``?range=24h&basis=event&account=1234&rule=80202``) so a
view can be bookmarked and shared, and every API call takes the same parameters. They are
translated here into the keys of ``manager/store/query.py`` and validated there — the parser the
CLI and the Admin API use — so a filter means the same thing in every front end. Nothing here
re-implements a filter.

Parameters:

- ``range``: ``15m``, ``1h``, ``24h`` (default), ``7d``, ``30d`` or ``custom`` with ``from`` and
  optionally ``to`` (ISO 8601, UTC).
- ``basis``: ``event`` (CloudTrail ``eventTime``, the default) or ``arrival`` (when the manager
  raised the alert).
- filters, each the query layer's filter of the same meaning: ``rule`` (repeatable or comma
  separated), ``level`` (minimum), ``agent``, ``account``, ``region``, ``user``, ``event``
  (eventName), ``service`` (eventSource), ``source`` (aws.source), ``bucket``, ``ip``
  (sourceIPAddress), ``error`` (errorCode), ``group`` (rule group), ``mitre`` (technique ID),
  ``q`` (text search).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import QueryParams

from trailwarden.common.errors import QueryError
from trailwarden.common.timeparse import parse_duration, utc_now
from trailwarden.manager.store import query as store_query
from trailwarden.manager.store.base import AlertQuery, SeriesQuery, StatsQuery

RANGES = ("15m", "1h", "24h", "7d", "30d")
"""The time-range picker's presets (``custom`` takes ``from``/``to``)."""
DEFAULT_RANGE = "24h"

FILTERS: dict[str, str] = {
    "rule": "rule_ids",
    "level": "min_level",
    "agent": "agent_id",
    "account": "account",
    "region": "region",
    "user": "user",
    "event": "event_name",
    "service": "event_source",
    "source": "source",
    "bucket": "bucket",
    "ip": "source_ip",
    "error": "error_code",
    "group": "group",
    "mitre": "mitre",
    "q": "search",
}
"""URL filter parameter → the query layer's filter key."""
STATS_FIELDS: dict[str, str] = {
    "rule": "rule",
    "level": "level",
    "agent": "agent",
    "account": "account",
    "region": "region",
    "user": "user",
    "event": "event-name",
    "service": "event-source",
    "source": "source",
    "bucket": "bucket",
    "ip": "source-ip",
    "error": "error-code",
    "group": "group",
    "mitre": "mitre",
    "country": "country",
}
"""URL filter parameter → the query layer's stats/split field (a panel counts by one);
``country`` (of the source address, for the map) is a stats field only, not a filter."""
TIME_PARAMS = ("range", "from", "to", "basis")
PAGING_PARAMS = ("limit", "page_token")


@dataclass(frozen=True, slots=True)
class ConsoleQuery:
    """A validated console request: the query layer's filter keys and how the range was asked."""

    filters: dict[str, Any]
    """Keys of ``store.query.FILTER_KEYS``."""
    range: str
    basis: str
    start: datetime | None
    end: datetime | None
    chips: dict[str, list[str]]
    """The filter parameters as given (for echoing back)."""

    def alert_query(self, limit: int = 0, page_token: str = "") -> AlertQuery:
        return store_query.alert_query_from_mapping(
            {**self.filters, "limit": limit, "page_token": page_token}, origin="console"
        )

    def stats_query(self, by: str, top: int = 0) -> StatsQuery:
        return store_query.stats_query_from_mapping(
            {**self.filters, "by": STATS_FIELDS[by], "top": top}, origin="console"
        )

    def series_query(self, split: str, top: int) -> SeriesQuery:
        return store_query.series_query_from_mapping(
            {**self.filters, "interval": "auto", "split": STATS_FIELDS[split], "top": top},
            origin="console",
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "range": self.range,
            "basis": self.basis,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "filters": self.chips,
        }


def parse_console_query(
    params: QueryParams | Mapping[str, Any],
    *,
    allowed: tuple[str, ...] = (),
    timed: bool = True,
    now: datetime | None = None,
) -> ConsoleQuery:
    """Validate ``params`` (the URL's); ``allowed`` names further parameters the caller reads.

    ``timed=False`` (the live stream) ignores the range: new alerts are always "now"."""
    getlist = params.getlist if isinstance(params, QueryParams) else _listing(params)
    known = set(FILTERS) | set(TIME_PARAMS) | set(allowed)
    unknown = sorted(set(params.keys()) - known)
    if unknown:
        raise QueryError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    now = now or utc_now()
    filters: dict[str, Any] = {}
    basis = (_one(getlist, "basis") or "event").lower()
    filters["time_basis"] = basis
    chosen, start, end = "live", None, None
    if timed:
        chosen, start, end = _time_range(getlist, now, filters)
    chips: dict[str, list[str]] = {}
    for name, key in FILTERS.items():
        values = [v.strip() for v in getlist(name) if v.strip()]
        if not values:
            continue
        chips[name] = values
        if key == "rule_ids":
            filters[key] = values
        elif key == "min_level":
            filters[key] = _integer(name, values[-1])
        else:
            filters[key] = values[-1]
    cq = ConsoleQuery(filters, chosen, basis, start, end, chips)
    cq.alert_query()  # validate every filter now: a bad one is a 400 naming it
    return cq


def _time_range(
    getlist: Any, now: datetime, filters: dict[str, Any]
) -> tuple[str, datetime | None, datetime | None]:
    chosen = (_one(getlist, "range") or DEFAULT_RANGE).lower()
    if chosen == "custom":
        from_text, to_text = _one(getlist, "from"), _one(getlist, "to")
        if not from_text:
            raise QueryError("range=custom needs from (and optionally to), ISO 8601 UTC")
        start, end = store_query.parse_time_range("", from_text, to_text, now=now)
        filters["from_time"] = from_text
        filters["to_time"] = to_text or now.isoformat()
        return chosen, start, end or now
    if chosen not in RANGES:
        raise QueryError(f"bad range {chosen!r}: use {', '.join(RANGES)} or custom")
    if _one(getlist, "from") or _one(getlist, "to"):
        raise QueryError("from/to need range=custom")
    start = datetime.fromtimestamp(now.timestamp() - parse_duration(chosen), tz=now.tzinfo)
    # Absolute bounds, not "since": every panel of one request sees the same range.
    filters["from_time"] = start.isoformat()
    filters["to_time"] = now.isoformat()
    return chosen, start, now


def _listing(params: Mapping[str, Any]) -> Any:
    def getlist(name: str) -> list[str]:
        value = params.get(name)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]

    return getlist


def _one(getlist: Any, name: str) -> str:
    values = getlist(name)
    return str(values[-1]).strip() if values else ""


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"bad {name} {text!r}: a whole number is needed") from None
