"""The console's URL query → the store's validated ``AlertQuery``.

Every page keeps its state in the URL (``?range=24h&basis=event&account=1234&rule=80202``) so a
view can be bookmarked and shared, and every API call takes the same parameters. They are
translated here into the keys of ``manager/store/query.py`` and validated there — the parser the
CLI and the Admin API use — so a filter means the same thing in every front end. Nothing here
re-implements a filter: a URL parameter the query layer does not know is refused (400) with the
parameters that are known.

Parameters:

- ``range``: ``15m``, ``1h``, ``24h`` (default), ``7d``, ``30d`` or ``custom`` with ``from`` and
  ``to`` (ISO 8601, UTC).
- ``basis``: ``event`` (CloudTrail ``eventTime``, the default) or ``arrival`` (when the manager
  raised the alert).
- filters: ``rule`` (repeatable or comma separated), ``level`` (minimum), ``agent``,
  ``account``, ``region``, ``user``, ``event`` (eventName), ``q`` (text search) and, where the
  query layer offers them, ``source``, ``bucket``, ``ip``, ``error``, ``service`` (eventSource),
  ``group`` (rule group) and ``mitre`` (technique ID).
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
from trailwarden.manager.store.base import AlertQuery

RANGES = ("15m", "1h", "24h", "7d", "30d")
"""The time-range picker's presets (``custom`` takes ``from``/``to``)."""
DEFAULT_RANGE = "24h"
BASES = ("event", "arrival")

FILTERS: dict[str, str] = {
    "rule": "rule_ids",
    "level": "min_level",
    "agent": "agent_id",
    "account": "account",
    "region": "region",
    "user": "user",
    "event": "event_name",
    "q": "search",
    "source": "source",
    "bucket": "bucket",
    "ip": "source_ip",
    "error": "error_code",
    "service": "event_source",
    "group": "group",
    "mitre": "mitre",
}
"""URL parameter → the query layer's key. Keys the query layer lacks are refused when used."""
_PAGING = {"limit": "limit", "page_token": "page_token"}
_TIME_KEYS = ("range", "from", "to", "basis")
_BASIS_KEY = "time_basis"
"""The query layer's key for the range basis, when it offers one."""


@dataclass(frozen=True, slots=True)
class ConsoleQuery:
    """A validated console request: the store query plus how the range was asked for."""

    alert_query: AlertQuery
    range: str
    basis: str
    """The basis actually applied (``arrival`` when the query layer has no event-time ranges)."""
    start: datetime | None
    end: datetime
    filters: dict[str, list[str]]
    """The filter parameters as given (for echoing back chips)."""

    @property
    def span_seconds(self) -> float:
        if self.start is None:
            return 30 * 86400.0
        return max(1.0, (self.end - self.start).total_seconds())

    def as_json(self) -> dict[str, Any]:
        return {
            "range": self.range,
            "basis": self.basis,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat(),
            "filters": self.filters,
        }


def supported_filters() -> list[str]:
    """The URL filter parameters the query layer understands."""
    known = set(store_query.ALERT_QUERY_KEYS)
    return [name for name, key in FILTERS.items() if key in known]


def parse_console_query(
    params: QueryParams | Mapping[str, Any],
    *,
    extra: Mapping[str, Any] | None = None,
    paging: bool = False,
    allowed: tuple[str, ...] = (),
    now: datetime | None = None,
) -> ConsoleQuery:
    """Validate ``params``; ``extra`` adds query-layer keys (e.g. a panel's fixed filter)."""
    getlist = params.getlist if isinstance(params, QueryParams) else _listing(params)
    known = set(store_query.ALERT_QUERY_KEYS)
    allowed_names = (
        set(FILTERS) | set(_TIME_KEYS) | set(allowed) | (set(_PAGING) if paging else set())
    )
    unknown = sorted(set(params.keys()) - allowed_names)
    if unknown:
        raise QueryError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(allowed_names))}"
        )
    now = now or utc_now()
    mapping: dict[str, Any] = {}
    chosen_range, start, end = _time_range(getlist, now, mapping)
    basis = (_one(getlist, "basis") or "event").lower()
    if basis not in BASES:
        raise QueryError(f"bad basis {basis!r}: use event or arrival")
    if _BASIS_KEY in known:
        mapping[_BASIS_KEY] = basis
    else:
        basis = "arrival"  # the query layer ranges over arrival time only
    filters: dict[str, list[str]] = {}
    for name, key in FILTERS.items():
        values = [v for v in getlist(name) if v.strip()]
        if not values:
            continue
        if key not in known:
            raise QueryError(
                f"filter {name!r} is not offered by the store's query layer; "
                f"filters offered: {', '.join(supported_filters())}"
            )
        filters[name] = values
        if key == "rule_ids":
            mapping[key] = values
        elif key == "min_level":
            mapping[key] = _integer(name, values[-1])
        else:
            mapping[key] = values[-1]
    if paging:
        limit = _one(getlist, "limit")
        if limit:
            mapping["limit"] = _integer("limit", limit)
        token = _one(getlist, "page_token")
        if token:
            mapping["page_token"] = token
    for key, value in (extra or {}).items():
        if key not in known:
            raise QueryError(f"the store's query layer has no {key!r} filter")
        mapping[key] = value
    alert_query = store_query.alert_query_from_mapping(mapping, origin="console query")
    return ConsoleQuery(alert_query, chosen_range, basis, start, end, filters)


def _time_range(
    getlist: Any, now: datetime, mapping: dict[str, Any]
) -> tuple[str, datetime | None, datetime]:
    chosen = (_one(getlist, "range") or DEFAULT_RANGE).lower()
    if chosen == "custom":
        from_text, to_text = _one(getlist, "from"), _one(getlist, "to")
        if not from_text:
            raise QueryError("range=custom needs from (and optionally to), ISO 8601 UTC")
        start, end = store_query.parse_time_range("", from_text, to_text, now=now)
        mapping["from_time"] = from_text
        if to_text:
            mapping["to_time"] = to_text
        return chosen, start, end or now
    if chosen not in RANGES:
        raise QueryError(f"bad range {chosen!r}: use {', '.join(RANGES)} or custom")
    if _one(getlist, "from") or _one(getlist, "to"):
        raise QueryError("from/to need range=custom")
    seconds = parse_duration(chosen)
    start = datetime.fromtimestamp(now.timestamp() - seconds, tz=now.tzinfo)
    # Absolute bounds, not "since": every panel of one page load must see the same range.
    mapping["from_time"] = start.isoformat()
    mapping["to_time"] = now.isoformat()
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
