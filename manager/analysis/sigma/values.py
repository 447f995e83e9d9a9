"""Sigma values (as pySigma parsed them, modifiers applied) compiled to tests on one field.

A test takes the field's raw JSON node (``MISSING`` when the event lacks the field) and says
whether the value matches it, with the Sigma specification's semantics:

* strings compare case-insensitively unless ``cased``; ``*`` and ``?`` are wildcards (pySigma has
  already turned ``contains``/``startswith``/``endswith``/``base64``/``windash`` into wildcard
  strings or expansions); a string pattern never reaches a regex engine unless it has a wildcard
  inside it — equality, prefix, suffix and substring tests run on the lower-cased text;
* ``re`` is a regular-expression search on RE2 (case-sensitive unless ``|i``), refused at load
  when it needs back-references or look-around;
* numbers match numerically (also a number held in a string), ``gt/gte/lt/lte`` compare numbers,
  booleans match JSON booleans, ``null`` matches a missing or null field, ``exists`` tests
  presence (a null counts as absent), ``cidr`` tests an IP address against a network,
  ``fieldref`` compares with another field of the same event;
* a JSON array matches when one of its elements does; objects never equal a value.

An ``|expand`` placeholder (``%Legitimate_Countries%``) matches no value: no value lists are
configured yet, and the loader names each one in the rule's metadata and in its log. Anything
else (query expressions, timestamp parts) raises ``UnsupportedValue``, which the loader turns
into a refusal naming the file and the rule.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from trailwarden.manager.analysis.rules.regex import PatternError, compile_pattern

MISSING: Any = object()
"""The node of a field the event does not have."""

NodeTest = Callable[[Any], bool]
"""A test on one field's raw JSON node."""
FieldLookup = Callable[[str], Any]
"""Gives another field's node (for ``fieldref``)."""


class UnsupportedValue(ValueError):
    """A Sigma value this engine cannot evaluate (refused at load, never dropped)."""


def _scalar_text(node: Any) -> str | None:
    """The text a string pattern sees: strings as they are, numbers and booleans in JSON form."""
    kind = type(node)
    if kind is str:
        return node  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if node else "false"
    if kind is int or kind is float:
        return json.dumps(node)
    return None


def _any_element(test: Callable[[Any], bool]) -> NodeTest:
    """Lift a scalar test to nodes: a list matches when one of its elements does."""

    def node_test(node: Any) -> bool:
        if type(node) is list:
            return any(test(item) for item in node if type(item) is not list)
        return test(node)

    return node_test


def string_test(value: SigmaString) -> Callable[[str], bool]:
    """A test on text for a Sigma string (wildcards, case as the string says)."""
    cased = isinstance(value, SigmaCasedString)
    parts = list(value.s)
    if any(isinstance(part, Placeholder) for part in parts):
        # An ``|expand`` placeholder (``%Legitimate_IP_Ranges%``) names a list the user keeps;
        # none is configured here, so it matches no value (the loader reports which).
        return _no_text
    stars = [i for i, part in enumerate(parts) if part is SpecialChars.WILDCARD_MULTI]
    has_single = any(part is SpecialChars.WILDCARD_SINGLE for part in parts)
    literal = "".join(p for p in parts if isinstance(p, str))
    text = literal if cased else literal.lower()

    def fold(subject: str) -> str:
        return subject if cased else subject.lower()

    if not has_single and len(stars) <= 2 and len(parts) - len(stars) <= 1:
        # The common shapes: x, *x, x*, *x*, * (one literal, wildcards only at the ends).
        lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
        trail = len(parts) > 1 and parts[-1] is SpecialChars.WILDCARD_MULTI
        if len(parts) == 1 and lead:
            return lambda subject: True
        if lead and trail:
            return lambda subject: text in fold(subject)
        if lead:
            return lambda subject: fold(subject).endswith(text)
        if trail:
            return lambda subject: fold(subject).startswith(text)
        if not stars:
            return lambda subject: fold(subject) == text
    pieces = []
    for part in parts:
        if part is SpecialChars.WILDCARD_MULTI:
            pieces.append("(?s:.*)")
        elif part is SpecialChars.WILDCARD_SINGLE:
            pieces.append("(?s:.)")
        else:
            pieces.append(_re2_escape(str(part)))
    flags = "" if cased else "(?i)"
    pattern = compile_pattern(f"{flags}^{''.join(pieces)}$", "pcre2")
    return pattern.test


def plain_shape(value: SigmaType) -> tuple[str, str] | None:
    """For a case-insensitive string with at most leading/trailing ``*``: (shape, lower-cased
    literal), shape one of ``exact``, ``prefix``, ``suffix``, ``contains``, ``any``. Those run
    as set lookups and ``startswith``/``endswith`` on the once-lowered field value (and a list
    of them, Sigma's OR, as one lookup); anything else returns None."""
    if not isinstance(value, SigmaString) or isinstance(value, SigmaCasedString):
        return None
    parts = list(value.s)
    if any(part is SpecialChars.WILDCARD_SINGLE or isinstance(part, Placeholder) for part in parts):
        return None
    stars = [i for i, part in enumerate(parts) if part is SpecialChars.WILDCARD_MULTI]
    literals = [part for part in parts if isinstance(part, str)]
    if len(literals) > 1 or any(0 < i < len(parts) - 1 for i in stars):
        return None
    text = literals[0].lower() if literals else ""
    lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
    trail = len(parts) > 1 and parts[-1] is SpecialChars.WILDCARD_MULTI
    if not literals:
        return ("any", "") if stars else ("exact", "")
    if lead and trail:
        return "contains", text
    if lead:
        return "suffix", text
    if trail:
        return "prefix", text
    return "exact", text


def lowered_text(node: Any) -> str | None:
    """What a case-insensitive string pattern compares against."""
    text = _scalar_text(node)
    return text.lower() if text is not None else None


def _no_text(subject: str) -> bool:
    return False


def placeholders(value: SigmaType) -> list[str]:
    """Names of the ``|expand`` placeholders in a value (they match nothing, see above)."""
    if isinstance(value, SigmaExpansion):
        return [name for v in value.values for name in placeholders(v)]
    if isinstance(value, SigmaString):
        return [part.name for part in value.s if isinstance(part, Placeholder)]
    return []


def _re2_escape(text: str) -> str:
    return "".join(f"\\{c}" if not c.isalnum() and c != "_" else c for c in text)


def _number(node: Any) -> float | None:
    kind = type(node)
    if kind is int or kind is float:
        return float(node)
    if kind is str:
        try:
            return float(node)
        except ValueError:
            return None
    return None


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def _absent(node: Any) -> bool:
    return node is MISSING or node is None


def compile_value(value: SigmaType, lookup: Callable[[], FieldLookup]) -> NodeTest:
    """The node test for one Sigma value. ``lookup`` gives, at match time, the event's field
    lookup (needed by ``fieldref`` only)."""
    if isinstance(value, SigmaExpansion):
        tests = [compile_value(v, lookup) for v in value.values]
        return lambda node: any(test(node) for test in tests)
    if isinstance(value, SigmaNull):
        return _absent
    if isinstance(value, SigmaExists):
        wanted = bool(value)
        return lambda node: (not _absent(node)) is wanted
    if isinstance(value, SigmaTimestampPart):
        raise UnsupportedValue("timestamp-part modifiers (minute, hour, ...) are not supported")
    if isinstance(value, SigmaBool):
        flag = bool(value)
        return _any_element(lambda node: type(node) is bool and node is flag)
    if isinstance(value, SigmaNumber):
        number = float(value.number)
        return _any_element(lambda node: type(node) is not bool and _number(node) == number)
    if isinstance(value, SigmaString):
        test = string_test(value)

        def text_test(node: Any) -> bool:
            text = _scalar_text(node)
            return text is not None and test(text)

        return _any_element(text_test)
    if isinstance(value, SigmaRegularExpression):
        return _any_element(_regex_test(value))
    if isinstance(value, SigmaCompareExpression):
        compare = _COMPARE[value.op]
        bound = float(value.number.number)

        def compare_test(node: Any) -> bool:
            number = _number(node) if type(node) is not bool else None
            return number is not None and compare(number, bound)

        return _any_element(compare_test)
    if isinstance(value, SigmaCIDRExpression):
        network = value.network

        def cidr_test(node: Any) -> bool:
            if type(node) is not str:
                return False
            try:
                return ipaddress.ip_address(node) in network
            except ValueError:
                return False

        return _any_element(cidr_test)
    if isinstance(value, SigmaFieldReference):
        return _fieldref_test(value, lookup)
    raise UnsupportedValue(f"value type {type(value).__name__} is not supported")


def _regex_test(value: SigmaRegularExpression) -> Callable[[Any], bool]:
    flags = ""
    if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
        flags += "i"
    if SigmaRegularExpressionFlag.MULTILINE in value.flags:
        flags += "m"
    if SigmaRegularExpressionFlag.DOTALL in value.flags:
        flags += "s"
    source = str(value.regexp)
    try:
        pattern = compile_pattern(f"(?{flags}){source}" if flags else source, "pcre2")
    except PatternError as exc:
        raise UnsupportedValue(f"regular expression {source!r}: {exc}") from exc
    test = pattern.test
    needed = required_literal(source)
    folded = "i" in flags
    if needed is not None and folded:
        needed = needed.lower()

    def regex_test(node: Any) -> bool:
        text = _scalar_text(node)
        if text is None:
            return False
        if needed is not None and needed not in (text.lower() if folded else text):
            return False  # the regex cannot match without it: skip the engine
        return test(text)

    return regex_test


_SIMPLE_META = frozenset(".^$*+?")
_COMPLEX_META = frozenset("|()[]{}\\")


def required_literal(source: str) -> str | None:
    """A piece of text every match of the regex contains (the longest run of literal
    characters of a regex made only of literals and ``. ^ $ * + ?``), or None. The regex runs
    only on values that contain it: most values are then refused by a substring test."""
    if len(source) < 3 or any(c in _COMPLEX_META for c in source):
        return None
    best = ""
    run: list[str] = []
    for index, char in enumerate(source):
        if char in _SIMPLE_META:
            if char in "*?" and run:
                run.pop()  # the character before a * or ? may be absent
            if len(run) > len(best):
                best = "".join(run)
            run = []
            continue
        run.append(char)
        if index + 1 == len(source) and len(run) > len(best):
            best = "".join(run)
    return best if len(best) >= 3 else None


def _fieldref_test(value: SigmaFieldReference, lookup: Callable[[], FieldLookup]) -> NodeTest:
    other = value.field
    starts, ends = value.starts_with, value.ends_with

    def fieldref_test(node: Any) -> bool:
        mine = _scalar_text(node)
        theirs = _scalar_text(lookup()(other))
        if mine is None or theirs is None:
            return False
        mine, theirs = mine.lower(), theirs.lower()
        if starts and ends:
            return theirs in mine
        if starts:
            return mine.startswith(theirs)
        if ends:
            return mine.endswith(theirs)
        return mine == theirs

    return fieldref_test
