"""Alert, stats and series queries as users write them → validated queries for any store.

The one place where what a front end was given (CLI flags, Admin API fields, the console's
query string) becomes an ``AlertQuery``, ``StatsQuery`` or ``SeriesQuery``. Backends receive
only validated queries and translate them; they never parse.

- Times: ``since`` (``24h``, relative to now) or ``from_time``/``to_time`` (ISO 8601 or Wazuh's
  ``2026-NOV-01``), on the clock ``time_basis`` names: ``event`` (CloudTrail eventTime, the
  default) or ``arrival`` (when the manager raised the alert).
- Filters (all ANDed): rule IDs, min and exact level, agent, account, region, user, event name,
  event source, aws.source, bucket, error code, source IP, rule group, MITRE technique, text.
- Stats: ``by`` one of ``StatsField`` (every filterable field, plus hour and day), ``top`` N.
- Series: ``interval`` (``auto`` picks one of ``INTERVALS`` giving at most ``AUTO_MAX_BUCKETS``
  buckets), ``split`` by a field, ``top`` groups (the rest becomes "other").

Anything wrong — a time that does not parse, ``since`` with ``from``, an empty range, a level
outside 0..16, an unknown field, a bad interval, too many buckets, an unknown key — raises
``QueryError`` naming the field and what is accepted, so the Admin API answers
INVALID_ARGUMENT and the console a 400 with a message a person can act on.

The paging token is produced and read here too: opaque to clients (base64 of the time basis and
the sort key of the last alert returned); a tampered token is a QueryError, not a crash.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from trailwarden.common.errors import QueryError
from trailwarden.common.timeparse import parse_duration, parse_timestamp, utc_now
from trailwarden.manager.store.base import (
    DEFAULT_LIMIT,
    DEFAULT_SERIES_TOP,
    MAX_LIMIT,
    NARROWING_FILTERS,
    AlertFilter,
    AlertQuery,
    SeriesQuery,
    StatsField,
    StatsQuery,
    TimeBasis,
)

FILTER_KEYS = ("since", "from_time", "to_time", "time_basis", *NARROWING_FILTERS)
"""Filter keys every ``*_from_mapping`` accepts (the Admin API's field names)."""
ALERT_QUERY_KEYS = (*FILTER_KEYS, "limit", "page_token")
"""Keys ``alert_query_from_mapping`` accepts."""
STATS_QUERY_KEYS = (*FILTER_KEYS, "by", "top")
"""Keys ``stats_query_from_mapping`` accepts."""
SERIES_QUERY_KEYS = (*FILTER_KEYS, "interval", "split", "top")
"""Keys ``series_query_from_mapping`` accepts."""

MAX_LEVEL = 16
"""Wazuh levels run 0..16."""
MAX_TEXT = 512
"""Longest filter value accepted (CloudTrail names and ARNs are far shorter)."""
MAX_STATS_TOP = 10_000
"""The most groups one stats answer may list (0 = every group)."""
MAX_SERIES_TOP = 50
"""The most groups a split series may show beside "other"."""
INTERVALS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
"""Series bucket widths in seconds: 1m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 1d."""
AUTO_MAX_BUCKETS = 120
"""``auto`` picks the narrowest interval giving at most this many buckets (so ~20..120)."""
AUTO_MIN_BUCKETS = 20
"""...preferring whole hours when they give at least this many (see ``choose_interval``)."""
MAX_SERIES_BUCKETS = 1_500
"""A series with more buckets is refused: a wider interval says the same, readably."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Times before this are refused (CloudTrail began in 2013; the store counts Unix ms)."""
_PAGE_TAG = "a2"


TEXT_FILTERS = {
    "agent_id": "--agent",
    "account": "--account",
    "region": "--region",
    "user": "--user",
    "event_name": "--event-name",
    "event_source": "--event-source",
    "source": "--source",
    "bucket": "--bucket",
    "error_code": "--error-code",
    "source_ip": "--source-ip",
    "group": "--group",
    "mitre": "--mitre",
}
"""Exact-match filters: AlertFilter attribute → the flag named in errors."""


# ---- times -----------------------------------------------------------------------------------


def parse_time_range(
    since: str = "", from_time: str = "", to_time: str = "", *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """``(start, end)`` from ``since`` (``24h``) or ``from_time``/``to_time``; QueryError if bad."""
    since, from_time, to_time = since.strip(), from_time.strip(), to_time.strip()
    if since and from_time:
        raise QueryError("give either --since or --from, not both")
    now = now or utc_now()
    start: datetime | None = None
    end: datetime | None = None
    if since:
        try:
            seconds = parse_duration(since)
            start = now - timedelta(seconds=seconds)
        except (ValueError, OverflowError):
            raise QueryError(
                f"bad --since {since!r}: use a duration such as 30m, 24h or 7d "
                "(or --from/--to for absolute times)"
            ) from None
    if from_time:
        start = _parse_time("--from", from_time)
    if to_time:
        end = _parse_time("--to", to_time)
    if start is not None and start < EARLIEST:
        raise QueryError(f"bad --since/--from: {start.isoformat()} is before 1970-01-01")
    if start is not None and end is not None and start >= end:
        raise QueryError(
            f"empty time range: --from {from_time or since} is not before --to {to_time}"
        )
    return start, end


def _parse_time(flag: str, text: str) -> datetime:
    try:
        value = parse_timestamp(text)
    except ValueError as exc:
        raise QueryError(f"bad {flag} time: {exc}") from None
    if value < EARLIEST:
        raise QueryError(f"bad {flag} time: {text!r} is before 1970-01-01")
    return value


def parse_time_basis(text: str) -> TimeBasis:
    """``event`` (default when empty) or ``arrival``; QueryError otherwise."""
    text = text.strip().lower() or TimeBasis.EVENT.value
    try:
        return TimeBasis(text)
    except ValueError:
        raise QueryError(
            f"unknown time basis {text!r}: use event (CloudTrail eventTime) or arrival"
        ) from None


# ---- filters ---------------------------------------------------------------------------------


def build_filter(
    *,
    since: str = "",
    from_time: str = "",
    to_time: str = "",
    time_basis: str = "",
    rule_ids: Iterable[str] | str = (),
    min_level: int = 0,
    level: int | None = None,
    search: str = "",
    now: datetime | None = None,
    **texts: str,
) -> AlertFilter:
    """A validated AlertFilter from what a front end received; ``texts`` are the exact-match
    filters (``agent_id``, ``account``, ``region``, ``user``, ``event_name``, ``event_source``,
    ``source``, ``bucket``, ``error_code``, ``source_ip``, ``group``, ``mitre``)."""
    unknown = sorted(set(texts) - set(TEXT_FILTERS))
    if unknown:
        raise TypeError(f"unknown filter argument(s): {', '.join(unknown)}")
    start, end = parse_time_range(since, from_time, to_time, now=now)
    rules: list[str] = []
    for item in (rule_ids,) if isinstance(rule_ids, str) else rule_ids:
        # "--rule 80202,80203" and repeated --rule both work.
        rules.extend(part.strip() for part in str(item).split(",") if part.strip())
    for rule in rules:
        _check_text("--rule", rule)
    if not 0 <= min_level <= MAX_LEVEL:
        raise QueryError(f"bad --min-level {min_level}: levels run 0..{MAX_LEVEL}")
    if level is not None and not 0 <= level <= MAX_LEVEL:
        raise QueryError(f"bad --level {level}: levels run 0..{MAX_LEVEL}")
    values = {
        name: _check_text(flag, texts.get(name, "").strip()) for name, flag in TEXT_FILTERS.items()
    }
    return AlertFilter(
        start=start,
        end=end,
        time_basis=parse_time_basis(time_basis),
        rule_ids=tuple(dict.fromkeys(rules)),
        min_level=min_level,
        level=level,
        search=_check_text("--search", search),
        **values,
    )


def _check_text(flag: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise QueryError(f"bad {flag}: {len(value)} characters, the most is {MAX_TEXT}")
    if "\x00" in value:
        raise QueryError(f"bad {flag}: contains a NUL character")
    return value


# ---- alert pages -----------------------------------------------------------------------------


def build_alert_query(
    *,
    limit: int = 0,
    page_token: str = "",
    now: datetime | None = None,
    **filters: Any,
) -> AlertQuery:
    """A validated AlertQuery; ``filters`` are ``build_filter``'s keywords; ``limit`` 0 means
    ``DEFAULT_LIMIT``."""
    flt = build_filter(now=now, **filters)
    if limit < 0 or limit > MAX_LIMIT:
        raise QueryError(f"bad --limit {limit}: use 1..{MAX_LIMIT} and page for more")
    if page_token:
        basis, _, _ = decode_page_token(page_token)  # refuse a bad token now, not in the store
        if basis is not flt.time_basis:
            raise QueryError(
                f"bad page token: it continues a listing by {basis.value} time, but this "
                f"query is by {flt.time_basis.value} time"
            )
    return AlertQuery(filter=flt, limit=limit or DEFAULT_LIMIT, page_token=page_token)


# ---- stats -----------------------------------------------------------------------------------


def build_stats_query(
    *, by: str = "", top: int = 0, now: datetime | None = None, **filters: Any
) -> StatsQuery:
    """A validated StatsQuery; ``by`` defaults to ``rule``; ``top`` 0 keeps every group."""
    flt = build_filter(now=now, **filters)
    if not 0 <= top <= MAX_STATS_TOP:
        raise QueryError(f"bad --top {top}: use 1..{MAX_STATS_TOP}, or 0 for every group")
    return StatsQuery(filter=flt, by=parse_stats_field(by), top=top)


def parse_stats_field(text: str, flag: str = "--by") -> StatsField:
    """A StatsField from its name (``event-name``; ``event_name`` is accepted too)."""
    text = text.strip().lower().replace("_", "-") or StatsField.RULE.value
    try:
        return StatsField(text)
    except ValueError:
        choices = "|".join(f.value for f in StatsField)
        raise QueryError(f"unknown field {text!r} for {flag}: use {choices}") from None


# ---- series ----------------------------------------------------------------------------------


def build_series_query(
    *,
    interval: str = "",
    split: str = "",
    top: int = DEFAULT_SERIES_TOP,
    now: datetime | None = None,
    **filters: Any,
) -> SeriesQuery:
    """A validated SeriesQuery. A series needs a start (``since`` or ``from_time``); its end
    defaults to now. ``interval`` ``auto`` (or empty) picks one from the range."""
    now = now or utc_now()
    flt = build_filter(now=now, **filters)
    start = flt.start
    if start is None:
        raise QueryError("a series needs a time range: give --since or --from")
    end = flt.end or now
    if end <= start:
        raise QueryError(f"empty time range: the series starts {start.isoformat()}, after now")
    flt = replace(flt, end=end)
    seconds = parse_interval(interval, (end - start).total_seconds())
    buckets = bucket_count(start, end, seconds)
    if buckets > MAX_SERIES_BUCKETS:
        raise QueryError(
            f"bad --interval {interval}: {buckets} buckets over this range, the most is "
            f"{MAX_SERIES_BUCKETS}; use a wider interval or auto"
        )
    split_field: StatsField | None = None
    if split.strip():
        split_field = parse_stats_field(split, "--split")
        if split_field.is_time:
            raise QueryError(f"bad --split {split_field.value}: a series is already by time")
    if not 1 <= top <= MAX_SERIES_TOP:
        raise QueryError(f"bad --top {top}: a split series shows 1..{MAX_SERIES_TOP} groups")
    return SeriesQuery(filter=flt, interval_seconds=seconds, split=split_field, top=top)


def parse_interval(text: str, span_seconds: float) -> int:
    """Bucket width in seconds: ``auto``/empty picks from ``INTERVALS``; else one of them."""
    text = text.strip().lower()
    if text in ("", "auto"):
        return choose_interval(span_seconds)
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = -1.0
    if seconds not in INTERVALS:
        raise QueryError(
            f"bad --interval {text!r}: use auto or one of "
            f"{', '.join(_interval_name(s) for s in INTERVALS)}"
        )
    return int(seconds)


def choose_interval(span_seconds: float) -> int:
    """The narrowest of ``INTERVALS`` giving at most ``AUTO_MAX_BUCKETS`` buckets — but whole
    hours when they still give at least ``AUTO_MIN_BUCKETS`` (a day: 24 hourly buckets, not 96
    of 15 minutes), since the store answers whole hours from its counts; the widest interval
    when none is narrow enough."""
    for seconds in INTERVALS:
        if span_seconds / seconds <= AUTO_MAX_BUCKETS:
            if seconds < 3600 and span_seconds / 3600 >= AUTO_MIN_BUCKETS:
                return 3600
            return seconds
    return INTERVALS[-1]


def bucket_count(start: datetime, end: datetime, seconds: int) -> int:
    """Buckets of ``seconds`` (aligned to the Unix epoch) that ``[start, end)`` touches."""
    first = int(start.timestamp()) // seconds
    last = (int(end.timestamp() * 1000) - 1) // (seconds * 1000)
    return max(0, last - first + 1)


def _interval_name(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---- from mappings (Admin API fields, the console's query string) ----------------------------


def alert_query_from_mapping(data: Mapping[str, Any], origin: str = "query") -> AlertQuery:
    """An AlertQuery from a mapping of ``ALERT_QUERY_KEYS``; unknown keys are refused."""
    _reject_unknown(data, ALERT_QUERY_KEYS, origin)
    return build_alert_query(
        limit=_int(data, "limit", origin),
        page_token=_text(data, "page_token", origin),
        **_filters_from(data, origin),
    )


def stats_query_from_mapping(data: Mapping[str, Any], origin: str = "query") -> StatsQuery:
    """A StatsQuery from a mapping of ``STATS_QUERY_KEYS``; unknown keys are refused."""
    _reject_unknown(data, STATS_QUERY_KEYS, origin)
    return build_stats_query(
        by=_text(data, "by", origin), top=_int(data, "top", origin), **_filters_from(data, origin)
    )


def series_query_from_mapping(data: Mapping[str, Any], origin: str = "query") -> SeriesQuery:
    """A SeriesQuery from a mapping of ``SERIES_QUERY_KEYS``; unknown keys are refused."""
    _reject_unknown(data, SERIES_QUERY_KEYS, origin)
    return build_series_query(
        interval=_text(data, "interval", origin),
        split=_text(data, "split", origin),
        top=_int(data, "top", origin, DEFAULT_SERIES_TOP),
        **_filters_from(data, origin),
    )


def _filters_from(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    rule_ids = data.get("rule_ids", ())
    if isinstance(rule_ids, str):
        rule_ids = [rule_ids]
    if not isinstance(rule_ids, list | tuple):
        raise QueryError(f"{origin}: field 'rule_ids' must be a list of text")
    level = data.get("level")
    if level is not None:
        level = _int(data, "level", origin)
    return {
        "since": _text(data, "since", origin),
        "from_time": _text(data, "from_time", origin),
        "to_time": _text(data, "to_time", origin),
        "time_basis": _text(data, "time_basis", origin),
        "rule_ids": tuple(str(r) for r in rule_ids),
        "min_level": _int(data, "min_level", origin),
        "level": level,
        "search": _text(data, "search", origin),
        **{name: _text(data, name, origin) for name in TEXT_FILTERS},
    }


def _reject_unknown(data: Mapping[str, Any], known: Iterable[str], origin: str) -> None:
    known = tuple(known)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise QueryError(
            f"{origin}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"known fields: {', '.join(known)}"
        )


def _text(data: Mapping[str, Any], key: str, origin: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise QueryError(f"{origin}: field {key!r} must be text, not {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], key: str, origin: str, default: int = 0) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise QueryError(f"{origin}: field {key!r} must be an integer, not {value!r}")
    return value


# ---- page tokens -----------------------------------------------------------------------------


def encode_page_token(basis: TimeBasis, time_ms: int, cursor: int) -> str:
    """The token that continues after the alert with this sort key (on ``basis`` time)."""
    raw = f"{_PAGE_TAG}:{basis.value}:{time_ms}:{cursor}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[TimeBasis, int, int]:
    """``(basis, time_ms, cursor)`` from a token; QueryError if it is not one of ours."""
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        tag, basis, time_text, cursor_text = text.split(":")
        if tag != _PAGE_TAG:
            raise ValueError("tag")
        return TimeBasis(basis), int(time_text), int(cursor_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError(
            f"bad page token {token[:40]!r}: pass the next_page_token of a previous page unchanged"
        ) from None
