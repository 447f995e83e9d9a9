"""A Sigma rule's condition (pySigma's parsed tree) compiled to one test on a decoded event.

pySigma resolves the condition string against the detections (``1 of selection_*``,
``all of them``, ``not``, ``and``/``or``), applies the modifiers and hands back a tree of
AND/OR/NOT over field/value and keyword expressions; this module turns that tree into nested
closures once, at load time. Field names are CloudTrail's dotted names
(``requestParameters.userName``), found under ``aws.`` in the decoded event; keys holding dots
themselves are found too. A keyword (a value without a field) matches when any string, number
or boolean anywhere in the CloudTrail record matches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import SigmaFieldReference

from trailwarden.manager.analysis.rules.matcher import EventView
from trailwarden.manager.analysis.sigma.values import (
    MISSING,
    FieldLookup,
    NodeTest,
    UnsupportedValue,
    compile_value,
    lowered_text,
    plain_shape,
)

EVENT_ROOT = "aws"
"""Where the decoder puts the CloudTrail record's fields."""


class FieldNodes:
    """One event's fields as Sigma sees them (raw JSON nodes), looked up once per field."""

    __slots__ = ("_cache", "_lowered", "record", "view")

    def __init__(self, view: EventView) -> None:
        record = view.event.get(EVENT_ROOT)
        self.view = view
        self.record: dict[str, Any] = record if type(record) is dict else {}
        self._cache: dict[str, Any] = {}
        self._lowered: dict[str, str | None] = {}

    def node(self, name: str) -> Any:
        """The JSON node at the dotted CloudTrail field ``name``, or ``MISSING``."""
        found = self._cache.get(name, self)
        if found is self:
            found = self._cache[name] = lookup(self.record, _path(name))
        return found

    def lowered(self, name: str, decoded: str) -> str | None:
        """The field's scalar value as lower-cased text (None for objects, arrays, absent).
        ``decoded`` is its decoded name (``aws.<name>``): a string the XML rules already
        lower-cased for this event is taken from the EventView's cache."""
        low = self._lowered.get(name, self)
        if low is self:
            node = self.node(name)
            low = self.view.lowered(decoded) if type(node) is str else lowered_text(node)
            self._lowered[name] = low
        return low  # type: ignore[return-value]


_PATHS: dict[str, tuple[str, ...]] = {}


def _path(name: str) -> tuple[str, ...]:
    path = _PATHS.get(name)
    if path is None:
        path = _PATHS[name] = tuple(name.split("."))
    return path


def lookup(node: Any, path: tuple[str, ...]) -> Any:
    """Walk ``path`` through nested objects; a key may itself contain dots (``"a.b"``)."""
    for index, part in enumerate(path):
        if type(node) is not dict:
            return MISSING
        if part in node:
            node = node[part]
            continue
        for end in range(len(path), index + 1, -1):
            joined = ".".join(path[index:end])
            if joined in node:
                return lookup(node[joined], path[end:]) if end < len(path) else node[joined]
        return MISSING
    return node


EventTest = Callable[[FieldNodes], bool]


class _Compiler:
    def __init__(self) -> None:
        self.current: FieldNodes | None = None
        """The event being tested (for ``fieldref``, which reads a second field)."""

    def field_lookup(self) -> FieldLookup:
        current = self.current
        assert current is not None
        return current.node

    def compile(self, item: Any) -> EventTest:
        if isinstance(item, ConditionAND):
            return _all([self.compile(arg) for arg in item.args])
        if isinstance(item, ConditionOR):
            merged = _plain_strings_of_one_field(item.args)
            if merged is not None:
                return _string_set_test(*merged)
            return _any([self.compile(arg) for arg in item.args])
        if isinstance(item, ConditionNOT):
            (inner,) = [self.compile(arg) for arg in item.args]
            return lambda nodes: not inner(nodes)
        if isinstance(item, ConditionFieldEqualsValueExpression):
            merged = _plain_strings_of_one_field([item])
            if merged is not None:
                return _string_set_test(*merged)
            if isinstance(item.value, SigmaFieldReference):
                return self._fieldref(item.field, compile_value(item.value, self.field_lookup))
            return _field(item.field, compile_value(item.value, self.field_lookup))
        if isinstance(item, ConditionValueExpression):
            return _keyword(compile_value(item.value, self.field_lookup))
        raise UnsupportedValue(f"condition element {type(item).__name__} is not supported")

    def _fieldref(self, name: str, test: NodeTest) -> EventTest:
        def fieldref_test(nodes: FieldNodes) -> bool:
            self.current = nodes  # the test reads the other field through field_lookup
            return test(nodes.node(name))

        return fieldref_test


def _field(name: str, test: NodeTest) -> EventTest:
    def field_test(nodes: FieldNodes) -> bool:
        return test(nodes.node(name))

    return field_test


def _all(tests: list[EventTest]) -> EventTest:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda nodes: first(nodes) and second(nodes)

    def all_test(nodes: FieldNodes) -> bool:
        for test in tests:  # noqa: SIM110 - a plain loop: no generator built per event
            if not test(nodes):
                return False
        return True

    return all_test


def _any(tests: list[EventTest]) -> EventTest:
    if len(tests) == 1:
        return tests[0]

    def any_test(nodes: FieldNodes) -> bool:
        for test in tests:  # noqa: SIM110 - a plain loop: no generator built per event
            if test(nodes):
                return True
        return False

    return any_test


Shapes = dict[str, list[str]]


def _plain_strings_of_one_field(args: list[Any]) -> tuple[str, Shapes] | None:
    """An OR of plain case-insensitive strings on one field (Sigma's value list): the field
    and its literals by shape, to test all at once; None for anything else."""
    name = None
    shapes: Shapes = {}
    for arg in args:
        if not isinstance(arg, ConditionFieldEqualsValueExpression):
            return None
        if name is not None and arg.field != name:
            return None
        shape = plain_shape(arg.value)
        if shape is None:
            return None
        name = arg.field
        shapes.setdefault(shape[0], []).append(shape[1])
    return (name, shapes) if name is not None else None


def _string_set_test(name: str, shapes: Shapes) -> EventTest:
    exact = frozenset(shapes.get("exact", ()))
    prefixes = tuple(shapes.get("prefix", ()))
    suffixes = tuple(shapes.get("suffix", ()))
    inside = tuple(shapes.get("contains", ()))
    anything = "any" in shapes

    def low_test(low: str) -> bool:
        return (
            anything
            or low in exact
            or (bool(prefixes) and low.startswith(prefixes))
            or (bool(suffixes) and low.endswith(suffixes))
            or any(text in low for text in inside)
        )

    decoded = f"{EVENT_ROOT}.{name}"

    def strings_test(nodes: FieldNodes) -> bool:
        low = nodes.lowered(name, decoded)
        if low is not None:
            return low_test(low)
        node = nodes.node(name)
        if type(node) is list:  # an array matches when one of its elements does
            for item in node:
                item_low = lowered_text(item)
                if item_low is not None and low_test(item_low):
                    return True
        return False

    return strings_test


def _keyword(test: NodeTest) -> EventTest:
    def keyword_test(nodes: FieldNodes) -> bool:
        return any(test(value) for value in _scalars(nodes.record))

    return keyword_test


def _scalars(node: Any) -> Any:
    if type(node) is dict:
        for child in node.values():
            yield from _scalars(child)
    elif type(node) is list:
        for child in node:
            yield from _scalars(child)
    elif node is not None:
        yield node


def _never(nodes: FieldNodes) -> bool:
    return False


def compile_rule(rule: SigmaRule) -> EventTest:
    """The test for a whole rule: its conditions are alternatives (any one matching is a
    match). Raises UnsupportedValue, or pySigma's own errors for a broken condition."""
    compiler = _Compiler()
    tests = []
    for condition in rule.detection.parsed_condition:
        tree = condition.parsed
        tests.append(_never if tree is None else compiler.compile(tree))
    return _any(tests)
