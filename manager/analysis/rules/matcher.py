"""Match one event against the rule tree, with Wazuh's semantics.

The roots are tried in Wazuh's order (level descending, then load order); the first that
matches is descended: its children are tried in the same order, the first child that matches
is descended in turn, and the walk ends at a rule none of whose children match. That rule (the
deepest match) decides the alert; a level-0 rule never alerts. A rule matches when every test
in it passes: ``decoded_as``, each ``<field>`` (a missing field fails the test, even negated,
as in Wazuh), each ``<list>``, each ``<match>``/``<regex>`` over the raw record, and, for
correlation rules, the frequency check done by ``correlate``.

A pcre2 pattern that runs on the backtracking engine (look-around, back-references) has a hard
per-match limit: a match stopped there fails its test and is noted on the event
(``EventView.rule_errors``, with the rule's file:line) for the pipeline to count and report.

Speed: field values are looked up once per event and cached (``EventView``), literal patterns
run on the cached lower-cased value, and each parent indexes its children by the values their
exact-value tests require (``^StopLogging$|^DeleteTrail$``; ``ChildIndex``), so an event only
meets the children that can match it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trailwarden.manager.analysis.policy import FIELDS as POLICY_FIELDS
from trailwarden.manager.analysis.policy import policy_facts
from trailwarden.manager.analysis.rules.model import Rule, Ruleset, try_order
from trailwarden.manager.analysis.rules.regex import MatchLimitError

DECODER_NAME = "json"
"""Every CloudTrail event is decoded as JSON, as Wazuh's aws integration events are."""
_MISSING: Any = object()


class EventView:
    """A decoded event plus the raw record, with per-event caches of field values."""

    __slots__ = (
        "_lowered",
        "_values",
        "agent_id",
        "decoded",
        "event",
        "lowered_text",
        "raw",
        "rule_errors",
        "text",
        "when",
    )

    def __init__(
        self, event: dict[str, Any], raw: bytes, agent_id: str = "", *, decoded: bool = False
    ) -> None:
        """``decoded``: the event comes from ``decode_record`` (its envelope is known)."""
        self.event = event
        self.raw = raw
        self.agent_id = agent_id
        self.decoded = decoded
        """Built from ``decode_record``: the envelope fields hold ``_ENVELOPE``'s values."""
        self.text: str | None = None
        self.lowered_text: str | None = None
        self.when: float | None = None
        """The event's time in epoch seconds, once someone needed it (correlation)."""
        self.rule_errors: list[str] = []
        """Tests that could not be decided on this event (a backtracking match stopped at its
        limit), each naming the rule and its file:line."""
        # Keyed by the dotted name: str hashes are cached, tuple hashes are not. Decoding sets
        # the envelope fields every ruleset tests first, so they start known.
        self._values: dict[str, str | None] = _ENVELOPE.copy() if decoded else {}
        self._lowered: dict[str, str | None] = _ENVELOPE.copy() if decoded else {}
        if decoded:
            self._read_hot_fields()

    def _read_hot_fields(self) -> None:
        """The fields nearly every event has read (the child indexes under 80202, 80203's
        errorCode, 80202's description), taken straight from the decoded ``aws`` object: one
        read each here costs less than a ``value()``/``lowered()`` call each later. Values
        are what ``value()`` would give; a shape it would walk (``userIdentity`` not an
        object) is left to it."""
        aws = self.event.get("aws")
        if type(aws) is not dict:
            return
        values, lowered = self._values, self._lowered
        for name, key, lower in _HOT_TOP_FIELDS:
            node = aws.get(key)
            value = node if type(node) is str else _stringify(node)
            values[name] = value
            if lower:
                lowered[name] = value.lower() if value is not None else None
        identity = aws.get("userIdentity")
        if type(identity) is dict:
            node = identity.get("type")
            value = node if type(node) is str else _stringify(node)
            values[_IDENTITY_TYPE] = value
            lowered[_IDENTITY_TYPE] = value.lower() if value is not None else None

    def value(self, name: str) -> str | None:
        """The field ``name`` (dotted) as Wazuh sees it: a string, or None if absent/an object."""
        found = self._values.get(name, _MISSING)
        if found is _MISSING:
            path = _PATHS.get(name) or _path(name)
            depth = len(path)
            # The common aws.<field> and aws.<object>.<field> are plain lookups; anything else
            # (deeper, or a key that itself holds dots) walks the path.
            top = self.event.get(path[0]) if depth <= 3 else None
            if type(top) is not dict:
                node = _lookup(self.event, path)
            elif depth == 2:
                node = top.get(path[1])
            else:
                mid = top.get(path[1])
                node = mid.get(path[2]) if type(mid) is dict else _lookup(self.event, path)
            found = node if type(node) is str else _stringify(node)
            if found is None and name in POLICY_FIELDS:
                # Computed from the record, not read from it (policy.py): all facts at once.
                # Tested only when the record has no such field, so reads cost nothing more.
                self._values.update(policy_facts(self.event))
                found = self._values[name]
            self._values[name] = found
        return found  # type: ignore[no-any-return]

    def lowered(self, name: str) -> str | None:
        """``value(name)`` lower-cased (what literal patterns compare against), cached."""
        low = self._lowered.get(name, _MISSING)
        if low is _MISSING:
            value = self.value(name)
            low = self._lowered[name] = value.lower() if value is not None else None
        return low  # type: ignore[no-any-return]

    def full_log(self) -> str:
        """The raw record as text (Wazuh's ``full_log``), what ``<match>``/``<regex>`` see."""
        if self.text is None:
            self.text = self.raw.decode("utf-8", "replace")
        return self.text

    def full_log_lowered(self) -> str:
        """``full_log()`` lower-cased, once per event: what literal ``<match>`` tests compare
        (every detection's ``"errorCode"`` test would otherwise lower the record again)."""
        if self.lowered_text is None:
            self.lowered_text = self.full_log().lower()
        return self.lowered_text


_PATHS: dict[str, tuple[str, ...]] = {}
_ENVELOPE: dict[str, str | None] = {"integration": "aws", "aws.source": "cloudtrail"}
"""Fields ``decode_record`` always sets to these (lower-case) values."""
_HOT_TOP_FIELDS = (
    ("aws.eventName", "eventName", True),
    ("aws.eventSource", "eventSource", False),
    ("aws.errorCode", "errorCode", False),
)
"""(dotted name, key in ``aws``, lower-cased too): read for nearly every event by any ruleset
built on 80202 (its index, its description, 80203), so an event starts with them known."""
_IDENTITY_TYPE = "aws.userIdentity.type"
"""Where 80202 files the children no eventName takes (root use, instance credentials)."""


def _path(name: str) -> tuple[str, ...]:
    path = _PATHS.get(name)
    if path is None:
        path = _PATHS[name] = tuple(name.split("."))
    return path


def _lookup(node: Any, path: tuple[str, ...]) -> Any:
    for index, part in enumerate(path):
        if type(node) is not dict:
            return None
        child = node.get(part, _MISSING)
        if child is _MISSING:
            return _lookup_dotted_keys(node, path[index:]) if index + 1 < len(path) else None
        node = child
    return node


def _lookup_dotted_keys(node: dict[str, Any], path: tuple[str, ...]) -> Any:
    """A key may itself contain dots ("x.y"): try the longest joined prefix first."""
    for end in range(len(path), 1, -1):
        joined = ".".join(path[:end])
        if joined in node:
            return _lookup(node[joined], path[end:]) if end < len(path) else node[joined]
    return None


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


RuleCheck = Callable[[EventView], bool]


def _never(view: EventView) -> bool:
    return False


def compile_check(rule: Rule) -> RuleCheck:
    """A function saying whether every static test of ``rule`` passes on an event.

    Correlation is checked apart. Tests are ANDed, so the cheap ones (literals on cached
    lower-cased values) run first and regexes over fields or the raw record last.
    """
    if rule.decoded_as is not None and rule.decoded_as != DECODER_NAME:
        return _never
    literals = tuple(
        (t.name, t.pattern.lowered) for t in rule.fields if t.pattern.lowered is not None
    )
    regexes = tuple((t.name, t.pattern.test) for t in rule.fields if t.pattern.lowered is None)
    lists = rule.lists
    log_literals = tuple(t.pattern.lowered for t in rule.log_tests if t.pattern.lowered is not None)
    logs = tuple(t.pattern.test for t in rule.log_tests if t.pattern.lowered is None)
    maxsize = rule.maxsize

    if len(literals) == 1 and not (regexes or lists or log_literals or logs or maxsize):
        ((only_name, only_test),) = literals

        def one_literal(view: EventView) -> bool:
            low = view._lowered.get(only_name, _MISSING)
            if low is _MISSING:
                low = view.lowered(only_name)
            return low is not None and only_test(low)

        return one_literal

    def check(view: EventView) -> bool:
        if maxsize and len(view.raw) <= maxsize:
            return False
        # The cache read inline: most fields a rule tests were read for the event already (by
        # the index or a sibling), and a method call per test costs more than the lookup.
        cache = view._lowered
        for name, test in literals:
            low = cache.get(name, _MISSING)
            if low is _MISSING:
                low = view.lowered(name)
            if low is None or not test(low):
                return False
        value_of = view.value
        for name, test in regexes:
            value = value_of(name)
            if value is None or not test(value):
                return False
        for list_test in lists:
            value = value_of(list_test.name)
            if value is None or not list_test.test(value):
                return False
        if log_literals:
            low_text = view.full_log_lowered()
            for literal_test in log_literals:
                if not literal_test(low_text):
                    return False
        if logs:
            text = view.full_log()
            for test in logs:
                if not test(text):
                    return False
        return True

    patterns = [t.pattern for t in rule.fields] + [t.pattern for t in rule.log_tests]
    if any(pattern.backtracking for pattern in patterns):
        return _limited(rule, check)
    return check


def _limited(rule: Rule, check: RuleCheck) -> RuleCheck:
    """``check`` for a rule with backtracking patterns: a match stopped at its limit fails the
    rule's test on this event and is noted on the event, naming the rule's file:line."""
    where = f"rule {rule.id} ({rule.location})"

    def limited(view: EventView) -> bool:
        try:
            return check(view)
        except MatchLimitError as exc:
            view.rule_errors.append(f"{where}: {exc}")
            return False

    return limited


def conditions_match(rule: Rule, view: EventView) -> bool:
    """Every static test of ``rule`` passes on the event (for callers outside the tree)."""
    return compile_check(rule)(view)


class Candidate:
    """A rule as the walk meets it: its compiled check, whether it keeps state, its children."""

    __slots__ = ("check", "children", "rule", "stateful")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.check = compile_check(rule)
        self.stateful = rule.stateful
        """Needs the correlator (frequency window or ignore timer)."""
        self.children: ChildIndex | None = None


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One rule tried for an event (for logtest): did it match, and at what depth."""

    rule_id: str
    depth: int
    matched: bool
    note: str = ""


CorrelationCheck = Callable[[Rule, EventView], "tuple[bool, str]"]
"""Asks the correlator whether a rule's frequency is reached (and it is not being ignored)."""


SPLIT_AT = 4
"""A value filing more children than this is split again on another exact-value field."""


class ChildIndex:
    """Per-parent dispatch on exact-value tests; keeps Wazuh's try order.

    The children are filed under the values of the field most of them test with exact literals
    (``^StopLogging$|^DeleteTrail$``), wherever that test stands among their tests: tests are
    ANDed, so a rule that needs eventName StopLogging can only match such an event. A value
    whose children are still many is split again on the next such field (eventSource). The
    children no value files (80203's errorCode, root rules testing userIdentity.type) are
    filed the same way on a field of their own (``rest``) when two or more test one; only
    those with no exact test at all are tried for every event. An event's candidates are its
    value's children and the unfiled ones that can match, merged in try order (each pair of
    lists merged once, then kept), so a parent with hundreds of children gives an event only
    the few that can match it.
    """

    __slots__ = ("_merged", "always", "by_value", "nested", "path", "rest")

    def __init__(
        self,
        children: list[Rule],
        candidates: dict[str, Candidate],
        used: tuple[str, ...] = (),
        minimum: int = 2,
    ) -> None:
        """``minimum``: how many children must test a field exactly for it to be indexed."""
        self.path: str | None = None
        self.by_value: dict[str, list[Candidate]] = {}
        self.nested: dict[str, ChildIndex] = {}
        self.rest: ChildIndex | None = None
        self._merged: dict[
            tuple[int, int], tuple[list[Candidate], list[Candidate], list[Candidate]]
        ]
        self._merged = {}
        ordered = sorted(children, key=try_order)
        self.always: list[Candidate] = [candidates[child.id] for child in ordered]
        path = _common_exact_path(ordered, used, minimum)
        if path is None:
            return
        self.path = path
        hits: dict[str, list[Rule]] = {}
        unfiled: list[Rule] = []
        for child in ordered:
            exact = _exact_values(child, path)
            if exact is None:
                unfiled.append(child)
            else:
                for value in exact:
                    hits.setdefault(value, []).append(child)
        self.always = [candidates[rule.id] for rule in unfiled]
        # Even one unfiled rule is worth filing: otherwise every event pays its check.
        rest = ChildIndex(unfiled, candidates, (*used, path), minimum=1) if unfiled else None
        self.rest = rest if rest is not None and rest.path is not None else None
        for value, rules in hits.items():
            if len(rules) > SPLIT_AT:
                split = ChildIndex(rules, candidates, (*used, path))
                if split.path is not None:
                    self.nested[value] = split
                    continue
            self.by_value[value] = [candidates[rule.id] for rule in rules]

    def candidates(self, view: EventView) -> list[Candidate]:
        if self.path is None:
            return self.always
        rest = self.rest.candidates(view) if self.rest is not None else self.always
        low = view.lowered(self.path)
        if low is None:
            return rest
        found = self.by_value.get(low)
        if found is None:
            split = self.nested.get(low) if self.nested else None
            if split is None:
                return rest
            found = split.candidates(view)
        if not rest:
            return found
        if not found:
            return rest
        # Every list here is held by an index (by_value, always, or a merge kept below), so
        # the pair of ids names it; the entry keeps both lists and is checked by identity.
        key = (id(found), id(rest))
        entry = self._merged.get(key)
        if entry is not None and entry[0] is found and entry[1] is rest:
            return entry[2]
        merged = sorted((*found, *rest), key=_candidate_order)
        self._merged[key] = (found, rest, merged)
        return merged

    def largest(self) -> int:
        """The most candidates any event can get here (for tests and the benchmark)."""
        filed = [len(c) for c in self.by_value.values()]
        filed += [split.largest() for split in self.nested.values()]
        rest = self.rest.largest() if self.rest is not None else len(self.always)
        return max(filed, default=0) + rest


def _candidate_order(candidate: Candidate) -> tuple[int, int]:
    return try_order(candidate.rule)


def _exact_values(rule: Rule, name: str) -> frozenset[str] | None:
    """The values ``rule`` requires of field ``name`` (an exact, not negated test), if any."""
    if rule.is_correlation:
        return None
    for test in rule.fields:
        if test.name == name and test.pattern.exact is not None:
            return test.pattern.exact
    return None


def _common_exact_path(
    children: list[Rule], used: tuple[str, ...] = (), minimum: int = 2
) -> str | None:
    """The field most children test with exact literals (worth indexing), if any."""
    counts: dict[str, int] = {}
    for child in children:
        if child.is_correlation:
            continue
        for name in dict.fromkeys(t.name for t in child.fields if t.pattern.exact is not None):
            if name not in used:
                counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    # Most children first; on a tie the field met first (rule order, then test order).
    path, count = max(counts.items(), key=lambda item: item[1])
    return path if count >= minimum else None


class RuleTree:
    """A ruleset prepared for matching (checks compiled, child indexes built, once)."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        candidates = {rule.id: Candidate(rule) for rule in ruleset.rules.values()}
        for rule in ruleset.rules.values():
            candidates[rule.id].children = ChildIndex(rule.children, candidates)
        self.roots = ChildIndex(ruleset.roots, candidates)
        self.listeners = {rule.id: ruleset.listeners_for(rule) for rule in ruleset.rules.values()}
        """Rule ID -> correlation rules that count events ending at that rule."""
        self.candidates = candidates
        """Rule ID -> the rule as the walk meets it (its compiled check, its children)."""
        self.decoded_prefix = _envelope_prefix(self.roots)
        """The rules every decoded event matches first (80200, 80202): decided by the envelope
        ``decode_record`` always writes, so the walk of a decoded event starts below them."""

    def candidates_below(self, rule_id: str) -> ChildIndex:
        """The index of ``rule_id``'s children (KeyError if no such rule)."""
        index = self.candidates[rule_id].children
        assert index is not None  # every candidate gets its index in __init__
        return index

    def walk(
        self,
        view: EventView,
        correlation: CorrelationCheck,
        trace: list[TraceStep] | None = None,
    ) -> tuple[Rule | None, list[Rule]]:
        """The deepest matching rule (None if no root matches) and the path to it."""
        path: list[Rule] = []
        index: ChildIndex | None = self.roots
        depth = 0
        if view.decoded and self.decoded_prefix:
            for candidate in self.decoded_prefix:
                if trace is not None:
                    trace.append(TraceStep(candidate.rule.id, depth, True))
                path.append(candidate.rule)
                depth += 1
            index = self.decoded_prefix[-1].children
        while index is not None:
            chosen = None
            for candidate in index.candidates(view):
                matched = candidate.check(view)
                note = ""
                if matched and candidate.stateful:
                    matched, note = correlation(candidate.rule, view)
                if trace is not None:
                    trace.append(TraceStep(candidate.rule.id, depth, matched, note))
                if matched:
                    chosen = candidate
                    break
            if chosen is None:
                break
            path.append(chosen.rule)
            index = chosen.children
            depth += 1
        return (path[-1] if path else None), path


def _envelope_prefix(roots: ChildIndex) -> list[Candidate]:
    """The chain of rules a decoded event is certain to descend first, as the walk would.

    At each level, only while every event meets the same candidates (no index path) and the
    first of them keeps no state and tests nothing but envelope fields (``integration``,
    ``aws.source``): its check on any decoded event is its check on the envelope alone, and
    passing, it is the one the walk chooses (the first match in try order)."""
    probe = EventView({}, b"", decoded=True)
    prefix: list[Candidate] = []
    index: ChildIndex | None = roots
    while index is not None and index.path is None and index.always:
        first = index.always[0]
        rule = first.rule
        decided_by_envelope = (
            not first.stateful
            and not rule.is_correlation
            and not (rule.lists or rule.log_tests or rule.maxsize)
            and all(test.name in _ENVELOPE for test in rule.fields)
        )
        if not decided_by_envelope or not first.check(probe):
            break
        prefix.append(first)
        index = first.children
    return prefix
