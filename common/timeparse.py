"""Durations and timestamps as users write them.

Durations: ``90s``, ``5m``, ``1h``, ``7d``, ``2w`` (or plain seconds). Dates: ISO 8601
(``2026-11-01``, ``2026-11-01T10:00:00Z``) and Wazuh's ``2026-NOV-01``. Everything is UTC.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WAZUH_DATE = re.compile(r"^(\d{4})-([A-Za-z]{3})-(\d{1,2})$")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; raises ValueError with the offending text."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not match:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 1h, 7d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    # NaN or infinity (TOML has both) would make a schedule never fire again, silently.
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite duration: {text!r}")
    return seconds


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 or Wazuh's ``YYYY-MMM-DD``; ValueError otherwise."""
    text = text.strip()
    match = _WAZUH_DATE.match(text)
    if match:
        month = _MONTHS.get(match.group(2).upper())
        if month is None:
            raise ValueError(f"not a date: {text!r} (unknown month {match.group(2)!r})")
        return datetime(int(match.group(1)), month, int(match.group(3)), tzinfo=UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: UTC falls outside datetime
        raise ValueError(f"date out of range in UTC: {text!r}") from None
    except ValueError:
        raise ValueError(
            f"not a date or time: {text!r} (use 2026-11-01, 2026-11-01T10:00:00Z or 2026-NOV-01)"
        ) from None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``24h`` → now minus 24 hours; an absolute time is accepted too."""
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        return parse_timestamp(text)


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_rfc3339(value: datetime) -> str:
    """``2026-11-26T15:04:05.123Z``: the form stored and printed everywhere."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def human_duration(ms: int) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``: a lag or an age in its two largest units."""
    seconds = max(0, int(ms) // 1000)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
