"""What the demo prints: one line per alert as it arrives, then a summary by rule."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

_HEADER = (
    f"{'EVENT TIME (UTC)':<20} {'LVL':>3}  {'RULE':<6} {'ACCOUNT':<12}  {'USER':<14} DESCRIPTION"
)


def header(out: TextIO) -> None:
    print(_HEADER, file=out)
    print("-" * len(_HEADER), file=out)


def terminal_width() -> int:
    """Columns of the terminal (160 when not a terminal, e.g. a log file)."""
    return max(80, shutil.get_terminal_size((160, 24)).columns)


def alert_line(alert: Mapping[str, Any], width: int = 160) -> str:
    """Time, level, rule, account, user and description of one ``--json`` alert."""
    when = str(alert.get("event_time") or alert.get("timestamp") or "")[:19].replace("T", " ")
    user = str(alert.get("user") or "-")[:14]
    description = str(alert.get("description") or "")
    line = (
        f"{when:<20} {alert.get('level', ''):>3}  {alert.get('rule_id', ''):<6} "
        f"{alert.get('account') or '-':<12}  {user:<14} {description}"
    )
    return line if len(line) <= width else line[: width - 1] + "…"


def summary(
    out: TextIO,
    fired: Mapping[str, int],
    labels: Mapping[str, str],
    expected: Iterable[str],
) -> list[str]:
    """Print alerts per rule (expected ones marked); returns the expected rules that never fired."""
    wanted = set(expected)
    print("", file=out)
    print(f"{'RULE':<6} {'ALERTS':>6}  {'EXPECTED':<8}  EXAMPLE", file=out)
    for rule in sorted(set(fired) | wanted):
        count = fired.get(rule, 0)
        mark = "yes" if rule in wanted else ""
        status = "" if count or rule not in wanted else "   <-- MISSING"
        example = labels.get(rule, "")
        if len(example) > 100:
            example = example[:99] + "…"
        print(f"{rule:<6} {count:>6}  {mark:<8}  {example}{status}", file=out)
    return sorted(rule for rule in wanted if not fired.get(rule))
