"""Match one event against the rule tree, with Wazuh's semantics.

The roots are tried in load order; the first that matches is descended: its children are tried
in order (correlation rules first), the first child that matches is descended in turn, and the
walk ends at a rule none of whose children match. That rule (the deepest match) decides the
alert; a level-0 rule never alerts. A rule matches when every test in it passes: ``decoded_as``,
each ``<field>`` (a missing field fails the test, even negated, as in Wazuh), each ``<list>``,
each ``<match>``/``<regex>`` over the raw record, and, for correlation rules, the frequency
check done by ``correlate``.

Speed: field values are looked up once per event and cached (``EventView``), literal patterns
run on the cached lower-cased value, and each parent indexes the children whose first test is
an exact-value literal (``^StopLogging$|^DeleteTrail$``) by that value, so an event only meets
the children that can match it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trailwarden.manager.analysis.rules.model import Rule, Ruleset

DECODER_NAME = "json"
_MISSING: Any = object()


class EventView:
    """A decoded event plus the raw record, with per-event caches of field values."""

    __slots__ = ("_lowered", "_values", "event", "raw", "text")

    def __init__(self, event: dict[str, Any], raw: bytes) -> None:
        self.event = event
        self.raw = raw
        self.text: str | None = None
        self._values: dict[tuple[str, ...], str | None] = {}
        self._lowered: dict[tuple[str, ...], str | None] = {}

    def value(self, path: tuple[str, ...]) -> str | None:
        """The field at ``path`` as Wazuh sees it (a string), or None if absent/an object."""
        try:
            return self._values[path]
        except KeyError:
            pass
        found = _stringify(_lookup(self.event, path))
        self._values[path] = found
        return found

    def lowered(self, path: tuple[str, ...]) -> str | None:
        try:
            return self._lowered[path]
        except KeyError:
            pass
        value = self.value(path)
        low = value.lower() if value is not None else None
        self._lowered[path] = low
        return low

    def full_log(self) -> str:
        """The raw record as text (Wazuh's ``full_log``), what ``<match>``/``<regex>`` see."""
        if self.text is None:
            self.text = self.raw.decode("utf-8", "replace")
        return self.text


def _lookup(node: Any, path: tuple[str, ...]) -> Any:
    for index, part in enumerate(path):
        if type(node) is not dict:
            return None
        child = node.get(part, _MISSING)
        if child is _MISSING:
            # A key may itself contain dots ("x.y"): try the longest joined remainder first.
            for end in range(len(path), index + 1, -1):
                joined = ".".join(path[index:end])
                if joined in node:
                    return _lookup(node[joined], path[end:]) if end < len(path) else node[joined]
            return None
        node = child
    return node


def _stringify(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None or kind is dict:
        return None
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def conditions_match(rule: Rule, view: EventView) -> bool:
    """Every static test of ``rule`` passes on the event (correlation is checked apart)."""
    if rule.decoded_as is not None and rule.decoded_as != DECODER_NAME:
        return False
    for test in rule.fields:
        pattern = test.pattern
        if pattern.lowered is not None:
            low = view.lowered(test.path)
            if low is None or not pattern.lowered(low):
                return False
        else:
            value = view.value(test.path)
            if value is None or not pattern.test(value):
                return False
    for list_test in rule.lists:
        value = view.value(list_test.path)
        if value is None or not list_test.test(value):
            return False
    return all(log_test.pattern.test(view.full_log()) for log_test in rule.log_tests)


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One rule tried for an event (for logtest): did it match, and at what depth."""

    rule_id: str
    depth: int
    matched: bool
    note: str = ""


CorrelationCheck = Callable[[Rule, EventView], "tuple[bool, str]"]
"""Asks the correlator whether a rule's frequency is reached (and it is not being ignored)."""


class ChildIndex:
    """Per-parent dispatch on an exact-value first test; keeps Wazuh's try order."""

    __slots__ = ("always", "by_value", "path")

    def __init__(self, children: list[Rule]) -> None:
        self.path: tuple[str, ...] | None = None
        self.by_value: dict[str, list[Rule]] = {}
        self.always: list[Rule] = list(children)
        path = _common_exact_path(children)
        if path is None:
            return
        self.path = path
        self.always = []
        for child in children:
            exact = _exact_values(child, path)
            if exact is None:
                self.always.append(child)
            else:
                for value in exact:
                    self.by_value.setdefault(value, []).append(child)

    def candidates(self, view: EventView) -> list[Rule]:
        if self.path is None:
            return self.always
        low = view.lowered(self.path)
        hit = self.by_value.get(low) if low is not None else None
        if not hit:
            return self.always
        if not self.always:
            return hit
        return sorted((*hit, *self.always), key=_try_order)


def _try_order(rule: Rule) -> tuple[bool, int]:
    return (not rule.is_correlation, rule.order)


def _exact_values(rule: Rule, path: tuple[str, ...]) -> frozenset[str] | None:
    if rule.is_correlation or not rule.fields:
        return None
    first = rule.fields[0]
    if first.path != path or first.pattern.exact is None:
        return None
    return first.pattern.exact


def _common_exact_path(children: list[Rule]) -> tuple[str, ...] | None:
    """The field most children test first with exact literals (worth indexing), if any."""
    counts: dict[tuple[str, ...], int] = {}
    for child in children:
        if child.fields and child.fields[0].pattern.exact is not None:
            counts[child.fields[0].path] = counts.get(child.fields[0].path, 0) + 1
    if not counts:
        return None
    path, count = max(counts.items(), key=lambda item: item[1])
    return path if count >= 2 else None


class RuleTree:
    """A ruleset prepared for matching (child indexes built once)."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.roots = ChildIndex(ruleset.roots)
        self.children = {rule.id: ChildIndex(rule.children) for rule in ruleset.rules.values()}
        self.listeners = {rule.id: ruleset.listeners_for(rule) for rule in ruleset.rules.values()}
        """Rule ID -> correlation rules that count events ending at that rule."""

    def walk(
        self,
        view: EventView,
        correlation: CorrelationCheck,
        trace: list[TraceStep] | None = None,
    ) -> tuple[Rule | None, list[Rule]]:
        """The deepest matching rule (None if no root matches) and the path to it."""
        path: list[Rule] = []
        index = self.roots
        depth = 0
        while True:
            chosen = None
            for rule in index.candidates(view):
                matched = conditions_match(rule, view)
                note = ""
                if matched and (rule.is_correlation or rule.ignore):
                    matched, note = correlation(rule, view)
                if trace is not None:
                    trace.append(TraceStep(rule.id, depth, matched, note))
                if matched:
                    chosen = rule
                    break
            if chosen is None:
                return (path[-1] if path else None), path
            path.append(chosen)
            index = self.children[chosen.id]
            depth += 1
