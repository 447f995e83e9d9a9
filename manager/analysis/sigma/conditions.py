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

from trailwarden.manager.analysis.sigma.values import (
    MISSING,
    FieldLookup,
    NodeTest,
    UnsupportedValue,
    compile_value,
)

EVENT_ROOT = "aws"
"""Where the decoder puts the CloudTrail record's fields."""


class FieldNodes:
    """One event's fields as Sigma sees them (raw JSON nodes), looked up once per field."""

    __slots__ = ("_cache", "record")

    def __init__(self, event: dict[str, Any]) -> None:
        record = event.get(EVENT_ROOT)
        self.record: dict[str, Any] = record if type(record) is dict else {}
        self._cache: dict[str, Any] = {}

    def node(self, name: str) -> Any:
        """The JSON node at the dotted CloudTrail field ``name``, or ``MISSING``."""
        found = self._cache.get(name, self)
        if found is self:
            found = self._cache[name] = lookup(self.record, tuple(name.split(".")))
        return found


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
            tests = [self.compile(arg) for arg in item.args]
            return lambda nodes: all(test(nodes) for test in tests)
        if isinstance(item, ConditionOR):
            tests = [self.compile(arg) for arg in item.args]
            return lambda nodes: any(test(nodes) for test in tests)
        if isinstance(item, ConditionNOT):
            (inner,) = [self.compile(arg) for arg in item.args]
            return lambda nodes: not inner(nodes)
        if isinstance(item, ConditionFieldEqualsValueExpression):
            return self._field(item.field, compile_value(item.value, self.field_lookup))
        if isinstance(item, ConditionValueExpression):
            return _keyword(compile_value(item.value, self.field_lookup))
        raise UnsupportedValue(f"condition element {type(item).__name__} is not supported")

    def _field(self, name: str, test: NodeTest) -> EventTest:
        def field_test(nodes: FieldNodes) -> bool:
            self.current = nodes
            return test(nodes.node(name))

        return field_test


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
    if len(tests) == 1:
        return tests[0]
    return lambda nodes: any(test(nodes) for test in tests)
