"""Texts every match of a pcre2 pattern contains, so most values are refused without a regex.

A detection's pcre2 test over the record (``"cidrIp(?:v4|v6)?"\\s*:\\s*"[^"]*/0"``) runs on
every event of its API; calling RE2 costs the record's conversion to bytes plus the search,
while ``'"cidrIp' in text`` is one ``memchr``-fast scan. ``needles(source)`` gives, for each
top-level alternative of the pattern, the literal text it starts with (after an optional
``^``); a value containing none of them cannot match, and the regex runs only on the others.
It is conservative: an alternative with no literal start of ``MIN_LENGTH`` characters, inline
flags (``(?i)`` may make the literal case-insensitive) or an unbalanced pattern give None
(always run the regex).
"""

from __future__ import annotations

MIN_LENGTH = 3
"""Shorter literals would pass most values: not worth the extra scan."""

_META = set(".^$*+?()[]{}|\\")
_QUANTIFIERS = set("*?{")
"""After these, the character before them may be absent (``+`` keeps it: one or more)."""
_LITERAL_ESCAPES = set("\"'/-.:=@#%&,;<>!~`*+?()[]{}|^$\\ ")


def needles(source: str) -> tuple[str, ...] | None:
    """One required literal per top-level alternative of ``source``, or None if some
    alternative has none (or the pattern uses inline flags)."""
    if "(?" in source and any(flag in source for flag in ("(?i", "(?s", "(?m", "(?x", "(?u")):
        return None
    alternatives = _split_top_level(source)
    if alternatives is None:
        return None
    out = []
    for alternative in alternatives:
        literal = _literal_start(alternative.removeprefix("^"))
        if len(literal) < MIN_LENGTH:
            return None
        out.append(literal)
    return tuple(dict.fromkeys(out))


def _split_top_level(source: str) -> list[str] | None:
    parts: list[str] = []
    depth = 0
    in_class = False
    start = 0
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return None
        elif char == "|" and depth == 0:
            parts.append(source[start:index])
            start = index + 1
        index += 1
    if depth or in_class:
        return None
    parts.append(source[start:])
    return parts


def _literal_start(alternative: str) -> str:
    """The literal characters the alternative begins with (that every match contains)."""
    out: list[str] = []
    index = 0
    while index < len(alternative):
        char = alternative[index]
        if char == "\\":
            escaped = alternative[index + 1 : index + 2]
            if escaped not in _LITERAL_ESCAPES or not escaped:
                break  # \s, \d, \w, \b ...: a class or an assertion, not this character
            step, literal = 2, escaped
        elif char in _META:
            break
        else:
            step, literal = 1, char
        following = alternative[index + step : index + step + 1]
        if following in _QUANTIFIERS:
            break  # this character may be absent
        out.append(literal)
        index += step
        if following == "+":
            break  # present at least once; what follows the + is not at a fixed place
    return "".join(out)
