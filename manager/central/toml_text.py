"""Render parsed TOML data back to TOML text, deterministically (no TOML writer in the stdlib).

Central config is stored as the admin wrote it, but an agent's *effective* config is built by
merging documents, so it has to be written out again: the text is what the agent receives and
what the revision hash is computed over, so the same data must always give the same bytes.
Covers what ``tomllib`` produces: strings, integers, floats, booleans, dates and times, arrays,
tables and arrays of tables.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def render_toml(data: Mapping[str, Any]) -> str:
    """TOML text for ``data``; ``tomllib.loads(render_toml(d)) == d``."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).strip() + "\n" if lines else ""


def _key(key: str) -> str:
    # fullmatch: with match(), "$" also matches before a trailing newline ("0\n" is not bare)
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, the rest as is
    (TOML allows no surrogate escapes, so JSON's ``\\ud800`` pairs are not an option)."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _is_table_array(value: object) -> bool:
    return (
        isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)
    )


def _table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    simple = [(k, v) for k, v in data.items() if not _is_nested(v)]
    nested = [(k, v) for k, v in data.items() if _is_nested(v)]
    for key, value in simple:
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        child = [*path, _key(key)]
        if isinstance(value, Mapping):
            lines.append("")
            lines.append(f"[{'.'.join(child)}]")
            _table(value, child, lines)
        else:
            for item in value:
                lines.append("")
                lines.append(f"[[{'.'.join(child)}]]")
                _table(item, child, lines)


def _is_nested(value: object) -> bool:
    return isinstance(value, Mapping) or _is_table_array(value)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
