"""Discard rules: drop records before they are spooled (Wazuh's ``discard_regex``).

A rule names a field by dotted path (``userIdentity.type``, ``requestParameters.bucketName``)
and a regular expression searched in its value. Expressions run on RE2, which matches in linear
time, so a crafted record cannot stall collection through catastrophic backtracking.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

_MISSING = object()


def compile_regex(pattern: str) -> Any:
    """An RE2 pattern; ValueError with RE2's reason when it does not compile."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print parse errors to stderr; we raise instead
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise ValueError(
            reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        ) from None


@dataclass(frozen=True)
class DiscardRule:
    """Drop a record when ``regex`` is found in the value of ``field``."""

    field: str
    """Dotted path into the record, e.g. ``eventName`` or ``userIdentity.type``."""
    regex: str
    """RE2 expression searched (not anchored) in the field's text."""
    pattern: Any = dataclasses.field(default=None, compare=False, repr=False)
    """The compiled expression."""

    def __post_init__(self) -> None:
        if self.pattern is None:
            object.__setattr__(self, "pattern", compile_regex(self.regex))

    def matches(self, record: Mapping[str, Any]) -> bool:
        value = field_value(record, self.field)
        if value is _MISSING or value is None:
            return False
        try:
            text = _as_text(value)
        except RecursionError:
            # Nested too deep to render (a crafted record): it raised out of the collector and
            # stopped the source's pass at this object, every pass. Keep what cannot be matched.
            return False
        return self.pattern.search(text) is not None


def field_value(record: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path, or a private sentinel when any step is missing."""
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def first_discarding_rule(
    record: Mapping[str, Any], rules: Sequence[DiscardRule]
) -> DiscardRule | None:
    """The first rule that drops ``record``, or None to keep it."""
    for rule in rules:
        if rule.matches(record):
            return rule
    return None
