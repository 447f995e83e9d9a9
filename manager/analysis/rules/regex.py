"""Wazuh's three pattern languages, compiled to linear-time matchers.

* **osmatch** (Wazuh's ``sregex``): literal text, case-insensitive, found anywhere; ``^`` anchors
  at the start, ``$`` at the end, ``|`` separates alternatives, a leading ``!`` negates.
* **osregex** (Wazuh's ``regex``): case-insensitive, found anywhere; ``\\w`` (letters, digits,
  ``-``, ``@``, ``_``), ``\\d``, ``\\s`` (space), ``\\t``, ``\\p`` (punctuation), ``\\W \\D \\S``
  (their complements), ``\\.`` (any character), ``+`` and ``*`` after a token, ``^ $ |``, groups
  in ``( )``; ``\\$ \\( \\) \\\\ \\|`` are literal. Every other character is literal (``.`` and
  ``?`` included).
* **pcre2**: case-sensitive, found anywhere. RE2 runs every pattern it can (linear time, no
  crafted event can slow it). What RE2 cannot run (look-around, back-references, atomic groups,
  possessive quantifiers: Wazuh's own rule 80367 uses ``^(?!^$|^-$).*``) runs on the ``regex``
  package, a backtracking engine, under a hard limit per match (``BACKTRACK_LIMIT_SECONDS``):
  a match that reaches it raises ``MatchLimitError``, which the matcher counts and reports
  with the rule's file:line as a failed test, so one pattern can never stall a worker.

Patterns that are plain literals (the common case: ``ConsoleLogin``, ``^Root$``,
``StopLogging|DeleteTrail``) never reach a regex engine: they become ``in`` / ``==`` /
``startswith`` tests on the lower-cased value, which is an order of magnitude cheaper per event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import re2
import regex

from trailwarden.manager.analysis.rules.needles import needles

BACKTRACK_LIMIT_SECONDS = 0.1
"""Longest one backtracking (non-RE2) match may run before it is stopped and reported.

The engine checks the clock while it backtracks, so a stopped match returns within a few
tens of milliseconds past the limit; every match RE2 can run has no limit and needs none."""

PatternKind = str
"""``osmatch`` | ``osregex`` | ``pcre2``."""

KINDS = ("osmatch", "osregex", "pcre2")

_OSREGEX_CLASSES = {
    "w": r"[A-Za-z0-9_@\-]",
    "W": r"[^A-Za-z0-9_@\-]",
    "d": r"[0-9]",
    "D": r"[^0-9]",
    "s": r"[ ]",
    "S": r"[^ ]",
    "t": r"\t",
    "p": r"[()*+,\-.:;<=>?\[\]!\"'#$%&|{}]",
    ".": r"(?s:.)",
}
_OSREGEX_LITERAL_ESCAPES = {"$", "(", ")", "\\", "|"}


class PatternError(ValueError):
    """The pattern is not valid in its language."""


class MatchLimitError(RuntimeError):
    """A backtracking match ran past ``BACKTRACK_LIMIT_SECONDS`` and was stopped.

    Raised out of ``Pattern.test``; the matcher turns it into a failed test plus a reported,
    counted error naming the rule's file:line."""

    def __init__(self, source: str, limit: float) -> None:
        super().__init__(
            f"pcre2 pattern {source!r} stopped after {limit * 1000:.0f} ms "
            "(backtracking match limit): counted as not matching"
        )
        self.source = source


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: ``test(value)`` says whether it matches (negation included)."""

    source: str
    kind: PatternKind
    test: Callable[[str], bool]
    lowered: Callable[[str], bool] | None = None
    """For pure literals: the same test taking the already lower-cased value (no regex)."""
    exact: frozenset[str] | None = None
    """For ``^a$|^b$`` literals: the lower-cased values it matches exactly (for indexing)."""
    backtracking: bool = False
    """Runs on the backtracking engine: ``test`` may raise ``MatchLimitError``."""
    negated: bool = False
    """``negate="yes"``: ``test`` says the source does not match (for documentation)."""

    @property
    def literal(self) -> bool:
        return self.lowered is not None


def compile_pattern(source: str, kind: PatternKind, negate: bool = False) -> Pattern:
    """Compile ``source`` in language ``kind``; PatternError says what is wrong."""
    if kind == "osmatch":
        pattern = _compile_osmatch(source)
    elif kind == "osregex":
        pattern = _compile_osregex(source)
    elif kind == "pcre2":
        pattern = _compile_pcre2(source)
    else:
        raise PatternError(f"unknown pattern type {kind!r} (use osmatch, osregex or pcre2)")
    if negate:
        inner = pattern.test
        low = pattern.lowered
        return Pattern(
            source,
            kind,
            lambda value: not inner(value),
            (lambda value: not low(value)) if low is not None else None,
            backtracking=pattern.backtracking,
            negated=True,
        )
    return pattern


# -- literal fast path -------------------------------------------------------------------------


def _literal_test(alternatives: list[tuple[bool, bool, str]]) -> Callable[[str], bool]:
    """A test, on the lower-cased value, for ``(anchored_start, anchored_end, literal)``."""
    equal = frozenset(lit for start, end, lit in alternatives if start and end)
    prefixes = tuple(lit for start, end, lit in alternatives if start and not end)
    suffixes = tuple(lit for start, end, lit in alternatives if end and not start)
    contains = tuple(lit for start, end, lit in alternatives if not start and not end)
    if equal and not (prefixes or suffixes or contains):
        return lambda low: low in equal
    if len(contains) == 1 and not (equal or prefixes or suffixes):
        (needle,) = contains
        return lambda low: needle in low

    def test(low: str) -> bool:
        if low in equal:
            return True
        if prefixes and low.startswith(prefixes):
            return True
        if suffixes and low.endswith(suffixes):
            return True
        return any(needle in low for needle in contains)

    return test


def _literal_pattern(
    source: str,
    kind: PatternKind,
    lowered: Callable[[str], bool],
    alternatives: list[tuple[bool, bool, str]] | None,
) -> Pattern:
    exact = None
    if alternatives and all(start and end for start, end, _ in alternatives):
        exact = frozenset(lit for _, _, lit in alternatives)
    return Pattern(source, kind, lambda value: lowered(value.lower()), lowered, exact)


def _compile_osmatch(source: str) -> Pattern:
    negated = source.startswith("!")
    body = source[1:] if negated else source
    alternatives: list[tuple[bool, bool, str]] = []
    for alt in body.split("|"):
        start = alt.startswith("^")
        if start:
            alt = alt[1:]
        end = alt.endswith("$") and not alt.endswith("\\$")
        if end:
            alt = alt[:-1]
        alternatives.append((start, end, alt.lower()))
    if not alternatives:
        raise PatternError("empty osmatch pattern")
    if negated:
        inner = _literal_test(alternatives)
        return _literal_pattern(source, "osmatch", lambda value: not inner(value), None)
    return _literal_pattern(source, "osmatch", _literal_test(alternatives), alternatives)


def _osregex_literal_alternatives(source: str) -> list[tuple[bool, bool, str]] | None:
    """The alternatives when the osregex is made of literals only, else None."""
    out: list[tuple[bool, bool, str]] = []
    for alt in source.split("|"):
        start = alt.startswith("^")
        if start:
            alt = alt[1:]
        end = alt.endswith("$")
        if end:
            alt = alt[:-1]
        if any(ch in alt for ch in "\\()+*^$"):
            return None
        out.append((start, end, alt.lower()))
    return out


def translate_osregex(source: str) -> str:
    """The RE2 syntax (without flags) for an OS_Regex pattern; PatternError if malformed."""
    out: list[str] = []
    depth = 0
    i = 0
    previous_is_token = False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            if i + 1 >= len(source):
                raise PatternError("pattern ends with a lone backslash")
            nxt = source[i + 1]
            if nxt in _OSREGEX_CLASSES:
                out.append(_OSREGEX_CLASSES[nxt])
            elif nxt in _OSREGEX_LITERAL_ESCAPES:
                out.append(re2.escape(nxt))
            else:
                raise PatternError(f"unknown escape \\{nxt} at offset {i}")
            i += 2
            previous_is_token = True
            continue
        if ch in "+*":
            if not previous_is_token:
                raise PatternError(f"'{ch}' at offset {i} follows nothing it could repeat")
            out.append(ch)
            previous_is_token = False
        elif ch == "(":
            depth += 1
            out.append("(")
            previous_is_token = False
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise PatternError(f"unbalanced ')' at offset {i}")
            out.append(")")
            previous_is_token = True
        elif ch in "^$|":
            out.append(ch)
            previous_is_token = False
        else:
            out.append(re2.escape(ch))
            previous_is_token = True
        i += 1
    if depth:
        raise PatternError("unbalanced '(' (missing ')')")
    return "".join(out)


def _nonempty(value: str) -> bool:
    return value != ""


def _anything(value: str) -> bool:
    return True


def _compile_osregex(source: str) -> Pattern:
    # Wazuh's idioms for "the field is present (and not empty)": no engine needed.
    if source == r"\.+":
        return Pattern(source, "osregex", _nonempty, _nonempty)
    if source == r"\.*":
        return Pattern(source, "osregex", _anything, _anything)
    literal = _osregex_literal_alternatives(source)
    if literal is not None:
        return _literal_pattern(source, "osregex", _literal_test(literal), literal)
    translated = translate_osregex(source)
    regex = _re2(translated, case_sensitive=False)
    return Pattern(source, "osregex", lambda value: regex.search(value) is not None)


def _compile_pcre2(source: str) -> Pattern:
    try:
        linear = _re2(source, case_sensitive=True)
    except PatternError as re2_refusal:
        return _compile_backtracking(source, re2_refusal)
    return Pattern(source, "pcre2", _gated(source, lambda value: linear.search(value) is not None))


def _gated(source: str, test: Callable[[str], bool]) -> Callable[[str], bool]:
    """``test``, run only on values that contain a text every match needs (``needles.py``)."""
    required = needles(source)
    if required is None:
        return test
    if len(required) == 1:
        (needle,) = required

        def gated_one(value: str) -> bool:
            return needle in value and test(value)

        return gated_one

    def gated(value: str) -> bool:
        return any(needle in value for needle in required) and test(value)

    return gated


def _compile_backtracking(source: str, re2_refusal: PatternError) -> Pattern:
    """A pcre2 pattern RE2 refuses, on the ``regex`` engine with the per-match limit."""
    try:
        compiled = regex.compile(source, regex.VERSION0)
    except regex.error as exc:
        raise PatternError(f"{exc} (RE2: {re2_refusal})") from exc
    limit = BACKTRACK_LIMIT_SECONDS

    def test(value: str) -> bool:
        try:
            return compiled.search(value, timeout=limit) is not None
        except TimeoutError as exc:
            raise MatchLimitError(source, limit) from exc

    return Pattern(source, "pcre2", _gated(source, test), backtracking=True)


def _re2(source: str, case_sensitive: bool) -> re2._Regexp:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    options.max_mem = 8 << 20
    try:
        return re2.compile(source, options=options)
    except re2.error as exc:
        message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(str(message)) from exc
