"""Numeric command-line flags with ranges: one place, one kind of error.

Every numeric flag of ``trailwarden`` is declared with ``type=int_in(low, high)`` or
``type=duration_in(low, high)``: a value outside the range (``--limit 99999999999``), zero where
zero means nothing (``--uses 0``, ``--ttl 0s``) or text that is not a number is refused by
argparse with one line naming the flag and the range (exit code 2), never a traceback and never
silently read as "unset".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from trailwarden.common.timeparse import parse_duration


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=`` accepting whole numbers in ``low..high`` (both included)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number (use {low}..{high})"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {low}..{high}")
        return value

    parse.__name__ = f"integer {low}..{high}"
    return parse


def duration_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type=`` accepting durations (``90s``, ``1h``, ``7d``) in ``low..high``
    seconds; returns seconds."""

    def parse(text: str) -> float:
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not low <= seconds <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is out of range: use {describe_seconds(low)}..{describe_seconds(high)}"
            )
        return seconds

    parse.__name__ = "duration"
    return parse


def describe_seconds(seconds: float) -> str:
    """``86400`` → ``1d``; the largest whole unit, for range messages."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
