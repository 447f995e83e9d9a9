"""Where a JSON value ends, found from its brackets and strings alone.

When one record of an object cannot be decoded (NaN, a 5,000-digit integer, nesting deeper than
Python's stack, a byte that is not UTF-8), the records after it are still good: to reach them the
parser needs only the end of the bad one. ``value_end`` finds it without building anything and
without recursion, so a record nested 50,000 deep costs one regex pass over its text, not a
``RecursionError`` that takes the whole object down.
"""

from __future__ import annotations

import re

_STRUCTURE = re.compile(r'["\[\]{}]')
"""Outside strings, the only characters that change the nesting."""
_STRING_STOP = re.compile(r'["\\]')
_SCALAR = re.compile(r"[^,\]}\s]*")
"""A number, literal or junk token: everything up to the next separator."""


def value_end(text: str, pos: int) -> int:
    """The index just past the JSON value starting at ``pos`` (no whitespace before it), or -1
    when the text ends first (a truncated object). Mismatched bracket kinds are not checked:
    the span only has to end where a decoder would, for values the decoder refused anyway."""
    if pos >= len(text):
        return -1
    first = text[pos]
    if first == '"':
        return _string_end(text, pos + 1)
    if first not in "[{":
        match = _SCALAR.match(text, pos)
        return match.end() if match and match.end() > pos else pos + 1
    depth = 0
    index = pos
    while True:
        match = _STRUCTURE.search(text, index)
        if match is None:
            return -1
        char, at = match.group(), match.start()
        if char == '"':
            index = _string_end(text, at + 1)
            if index < 0:
                return -1
            continue
        depth += 1 if char in "[{" else -1
        index = at + 1
        if depth == 0:
            return index


def _string_end(text: str, index: int) -> int:
    """Just past the closing quote of the string whose body starts at ``index``; -1 if none."""
    while True:
        match = _STRING_STOP.search(text, index)
        if match is None:
            return -1
        if match.group() == '"':
            return match.end()
        index = match.start() + 2  # a backslash escapes the next character, quotes included
