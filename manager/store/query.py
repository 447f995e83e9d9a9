"""Alert and stats queries as users write them → validated ``AlertQuery`` / ``StatsQuery``.

Users (CLI flags, Admin API fields) give times as text: ``--since 24h`` (relative) or
``--from``/``--to`` (ISO 8601 or Wazuh's ``2026-NOV-01``). Anything wrong — a time that does not
parse, ``--since`` together with ``--from``, ``from`` after ``to``, a negative level, an unknown
``--by`` field, an unknown query key — raises ``QueryError`` naming the field and what is
accepted, so the Admin API answers INVALID_ARGUMENT with a message an admin can act on.

The paging token is produced and read here too: it is opaque to clients (base64 of the sort key
of the last alert returned) and a tampered token is a QueryError, not a crash.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from trailwarden.common.errors import QueryError
from trailwarden.common.timeparse import parse_duration, parse_timestamp, utc_now
from trailwarden.manager.store.base import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AlertQuery,
    StatsField,
    StatsQuery,
)

ALERT_QUERY_KEYS = (
    "since",
    "from_time",
    "to_time",
    "rule_ids",
    "min_level",
    "agent_id",
    "account",
    "region",
    "user",
    "event_name",
    "search",
    "limit",
    "page_token",
)
"""Keys ``alert_query_from_mapping`` accepts (the Admin API's AlertQuery field names)."""

STATS_QUERY_KEYS = ("since", "from_time", "to_time", "by")
"""Keys ``stats_query_from_mapping`` accepts."""

MAX_SINCE_DAYS = 36_500
"""The longest ``since`` accepted (a hundred years); longer ones are refused, not overflowed."""
MAX_SEARCH_CHARS = 1024
"""The longest ``--search`` text (it is scanned for in every row the other filters keep)."""
MAX_FIELD_CHARS = 256
"""The longest exact-match filter value (account, region, user, event name, agent, rule ID)."""
MAX_RULE_IDS = 1000
"""Rule IDs one query may name."""
MAX_LEVEL = 16
"""Wazuh levels run 0..16."""
_CURSOR_TAG = "a1:"


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
        except ValueError:
            raise QueryError(
                f"bad --since {since!r}: use a duration such as 30m, 24h or 7d "
                "(or --from/--to for absolute times)"
            ) from None
        try:
            start = datetime.fromtimestamp(now.timestamp() - seconds, tz=now.tzinfo)
        except (OverflowError, OSError, ValueError):
            raise QueryError(
                f"bad --since {since!r}: reaches before year 1; use at most "
                f"{MAX_SINCE_DAYS}d (or --from)"
            ) from None
        if seconds > MAX_SINCE_DAYS * 86400:
            raise QueryError(f"bad --since {since!r}: use at most {MAX_SINCE_DAYS}d (or --from)")
    if from_time:
        start = _parse_time("--from", from_time)
    if to_time:
        end = _parse_time("--to", to_time)
    if start is not None and end is not None and start >= end:
        raise QueryError(
            f"empty time range: --from {from_time or since} is not before --to {to_time}"
        )
    return start, end


def _parse_time(flag: str, text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise QueryError(f"bad {flag} time: {exc}") from None


def build_alert_query(
    *,
    since: str = "",
    from_time: str = "",
    to_time: str = "",
    rule_ids: Iterable[str] = (),
    min_level: int = 0,
    agent_id: str = "",
    account: str = "",
    region: str = "",
    user: str = "",
    event_name: str = "",
    search: str = "",
    limit: int = 0,
    page_token: str = "",
    now: datetime | None = None,
) -> AlertQuery:
    """A validated AlertQuery; ``limit`` 0 means the default (``DEFAULT_LIMIT``)."""
    start, end = parse_time_range(since, from_time, to_time, now=now)
    rules: list[str] = []
    for item in rule_ids:
        # "--rule 80202,80203" and repeated --rule both work.
        rules.extend(part.strip() for part in str(item).split(",") if part.strip())
    if not 0 <= min_level <= MAX_LEVEL:
        raise QueryError(f"bad --min-level {min_level}: levels run 0..{MAX_LEVEL}")
    if limit < 0 or limit > MAX_LIMIT:
        raise QueryError(f"bad --limit {limit}: use 1..{MAX_LIMIT} and page for more")
    if page_token:
        decode_page_token(page_token)  # refuse a bad token now, not in the store
    if len(rules) > MAX_RULE_IDS:
        raise QueryError(f"bad --rule: at most {MAX_RULE_IDS} rule IDs, not {len(rules)}")
    for flag, text, most in (
        ("--search", search, MAX_SEARCH_CHARS),
        ("--agent", agent_id, MAX_FIELD_CHARS),
        ("--account", account, MAX_FIELD_CHARS),
        ("--region", region, MAX_FIELD_CHARS),
        ("--user", user, MAX_FIELD_CHARS),
        ("--event-name", event_name, MAX_FIELD_CHARS),
        *(("--rule", rule, MAX_FIELD_CHARS) for rule in rules),
    ):
        if len(text) > most:
            raise QueryError(f"bad {flag}: at most {most} characters, not {len(text)}")
    return AlertQuery(
        start=start,
        end=end,
        rule_ids=tuple(dict.fromkeys(rules)),
        min_level=min_level,
        agent_id=agent_id.strip(),
        account=account.strip(),
        region=region.strip(),
        user=user.strip(),
        event_name=event_name.strip(),
        search=search,
        limit=limit or DEFAULT_LIMIT,
        page_token=page_token,
    )


def build_stats_query(
    *,
    since: str = "",
    from_time: str = "",
    to_time: str = "",
    by: str = "",
    now: datetime | None = None,
) -> StatsQuery:
    """A validated StatsQuery; ``by`` defaults to ``rule``."""
    start, end = parse_time_range(since, from_time, to_time, now=now)
    return StatsQuery(start=start, end=end, by=parse_stats_field(by))


def parse_stats_field(text: str) -> StatsField:
    text = text.strip().lower() or StatsField.RULE.value
    try:
        return StatsField(text)
    except ValueError:
        choices = "|".join(f.value for f in StatsField)
        raise QueryError(f"unknown field {text!r} for --by: use {choices}") from None


def alert_query_from_mapping(data: Mapping[str, Any], origin: str = "query") -> AlertQuery:
    """An AlertQuery from a mapping of ``ALERT_QUERY_KEYS``; unknown keys are refused."""
    _reject_unknown(data, ALERT_QUERY_KEYS, origin)
    rule_ids = data.get("rule_ids", ())
    if isinstance(rule_ids, str):
        rule_ids = [rule_ids]
    return build_alert_query(
        since=_text(data, "since", origin),
        from_time=_text(data, "from_time", origin),
        to_time=_text(data, "to_time", origin),
        rule_ids=[str(r) for r in rule_ids],
        min_level=_int(data, "min_level", origin),
        agent_id=_text(data, "agent_id", origin),
        account=_text(data, "account", origin),
        region=_text(data, "region", origin),
        user=_text(data, "user", origin),
        event_name=_text(data, "event_name", origin),
        search=_text(data, "search", origin),
        limit=_int(data, "limit", origin),
        page_token=_text(data, "page_token", origin),
    )


def stats_query_from_mapping(data: Mapping[str, Any], origin: str = "query") -> StatsQuery:
    """A StatsQuery from a mapping of ``STATS_QUERY_KEYS``; unknown keys are refused."""
    _reject_unknown(data, STATS_QUERY_KEYS, origin)
    return build_stats_query(
        since=_text(data, "since", origin),
        from_time=_text(data, "from_time", origin),
        to_time=_text(data, "to_time", origin),
        by=_text(data, "by", origin),
    )


def _reject_unknown(data: Mapping[str, Any], known: tuple[str, ...], origin: str) -> None:
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


def _int(data: Mapping[str, Any], key: str, origin: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise QueryError(f"{origin}: field {key!r} must be an integer, not {value!r}")
    return value


def encode_page_token(timestamp_ms: int, cursor: int) -> str:
    """The token that continues after the alert with this sort key."""
    raw = f"{_CURSOR_TAG}{timestamp_ms}:{cursor}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int, int]:
    """``(timestamp_ms, cursor)`` from a token; QueryError if it is not one of ours."""
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        if not text.startswith(_CURSOR_TAG):
            raise ValueError("prefix")
        ts_text, cursor_text = text[len(_CURSOR_TAG) :].split(":")
        timestamp_ms, cursor = int(ts_text), int(cursor_text)
        # Both go into SQL as 64-bit integers: a forged huge one raised OverflowError (UNKNOWN).
        if not (0 <= timestamp_ms < 2**62 and 0 <= cursor < 2**62):
            raise ValueError("out of range")
        return timestamp_ms, cursor
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError(
            f"bad page token {token[:40]!r}: pass the next_page_token of a previous page unchanged"
        ) from None
