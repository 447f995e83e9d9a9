"""The rule model: what a Wazuh XML rule becomes once loaded, and the ruleset tree.

Rules are built by ``loader`` and never change afterwards except for ``children``, which the
loader fills when it links the tree. A ``Ruleset`` is immutable once returned by
``load_ruleset``; a reload builds a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trailwarden.manager.analysis.rules.regex import Pattern

LOOKUPS = ("match_key", "not_match_key", "match_key_value")
"""CDB list lookups supported (Wazuh's address_* lookups are refused at load)."""


@dataclass(frozen=True, slots=True)
class FieldTest:
    """``<field name=... type=... negate=...>``: a pattern over one decoded field."""

    name: str
    """Dotted field name (``aws.userIdentity.userName``): a path into the nested event."""
    pattern: Pattern


@dataclass(frozen=True, slots=True)
class LogTest:
    """``<match>`` or ``<regex>``: a pattern over the whole raw record (Wazuh's full_log)."""

    element: str
    pattern: Pattern


@dataclass(frozen=True, slots=True)
class ListTest:
    """``<list field=... lookup=...>``: a CDB-style key(/value) lookup."""

    name: str
    lookup: str
    entries: Mapping[str, str]
    check_value: Pattern | None = None
    """For ``match_key_value``: the pattern the found value must match."""

    def test(self, value: str) -> bool:
        if self.lookup == "match_key":
            return value in self.entries
        if self.lookup == "not_match_key":
            return value not in self.entries
        found = self.entries.get(value)
        if found is None:
            return False
        return self.check_value.test(found) if self.check_value is not None else True


@dataclass(frozen=True, slots=True)
class DescriptionPart:
    """A literal piece of a description, or a ``$(field)`` reference (``name`` set)."""

    text: str
    name: str | None = None


@dataclass(eq=False, slots=True)
class Rule:
    """One rule. Identity is the ``id``; ``children`` is the rule tree below it."""

    id: str
    level: int
    file: str
    line: int
    description: tuple[DescriptionPart, ...] = ()
    description_source: str = ""
    groups: tuple[str, ...] = ()
    mitre_ids: tuple[str, ...] = ()
    options: frozenset[str] = frozenset()
    """Wazuh's ``<options>`` (``OPTIONS`` in the loader) plus ``noalert``."""
    info: tuple[str, ...] = ()
    """``<info>`` texts (a link or a note for the analyst), written as ``rule.info``."""
    maxsize: int = 0
    """``maxsize``: the rule only matches records longer than this many bytes (0: any)."""
    if_sid: tuple[str, ...] = ()
    if_group: tuple[str, ...] = ()
    if_matched_sid: tuple[str, ...] = ()
    if_matched_group: tuple[str, ...] = ()
    frequency: int = 0
    timeframe: int = 0
    ignore: int = 0
    same_fields: tuple[str, ...] = ()
    different_fields: tuple[str, ...] = ()
    decoded_as: str | None = None
    fields: tuple[FieldTest, ...] = ()
    log_tests: tuple[LogTest, ...] = ()
    lists: tuple[ListTest, ...] = ()
    children: list[Rule] = field(default_factory=list)
    order: int = 0
    """Position in load order (siblings with the same level are tried in this order)."""
    is_correlation: bool = False
    """Looks back at earlier events (``if_matched_*``); set by the loader."""
    stateful: bool = False
    """Needs the correlator when it matches (correlation or ``ignore``); set by the loader."""
    mitre_tactics: tuple[str, ...] = ()
    """MITRE ATT&CK tactic names (``Privilege Escalation``), from Sigma tags."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """What the rule's language says beside its tests (a Sigma rule's falsepositives,
    references, status, author): kept for people, not matched."""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def correlation_signature(self) -> tuple[object, ...]:
        """What its correlation window depends on: state is kept across reloads if unchanged."""
        return (
            self.if_matched_sid,
            self.if_matched_group,
            self.frequency,
            self.timeframe,
            self.same_fields,
            self.different_fields,
        )


def try_order(rule: Rule) -> tuple[int, int]:
    """Sort key of Wazuh's sibling order: level descending, then load order."""
    return (-rule.level, rule.order)


@dataclass(frozen=True, slots=True)
class Detection:
    """A rule tried on every event on its own, beside the tree (a Sigma rule): each one that
    matches raises its own alert, whatever the tree decided."""

    rule: Rule
    test: Callable[[Any], bool]
    """Takes the event's ``FieldNodes`` (see ``manager/analysis/sigma``)."""
    index_field: str | None = None
    """A decoded field (``aws.eventName``) whose lower-cased value must pass ``index_kind``
    with ``index_values`` for the rule to match: other events never try it."""
    index_values: frozenset[str] = frozenset()
    index_kind: str = "exact"
    """``exact`` (one of), ``prefix`` (starts with one of), ``contains`` (holds one of)."""
    alerts: bool = True
    """False for a rule only used by correlations (Sigma's ``generate: false``)."""

    @property
    def passes_gate(self) -> Callable[[str], bool]:
        """The index test on the lower-cased value of ``index_field``."""
        values = self.index_values
        if self.index_kind == "prefix":
            prefixes = tuple(values)
            return lambda low: low.startswith(prefixes)
        if self.index_kind == "contains":
            return lambda low: any(text in low for text in values)
        return values.__contains__


@dataclass(frozen=True, slots=True)
class CorrelationSpec:
    """A Sigma correlation: counts matches of ``refs`` in event-time windows of ``timespan``
    seconds, grouped by ``group_by`` values (and by agent, as Wazuh's frequency rules)."""

    rule: Rule
    kind: str
    """``event_count`` | ``value_count`` | ``temporal``."""
    refs: tuple[str, ...]
    """IDs of the detections (or correlations) it counts."""
    group_by: tuple[tuple[str, ...], ...]
    """Per ref, the dotted CloudTrail field names to group by (aliases resolved)."""
    timespan: int
    threshold: int
    """Fires when the count reaches this (``gte``; ``gt N`` is stored as N+1)."""
    value_field: tuple[str, ...] = ()
    """For ``value_count``: per ref, the field whose distinct values are counted."""

    def signature(self) -> tuple[object, ...]:
        """What its window depends on: state is kept across reloads if unchanged."""
        return (
            self.kind,
            self.refs,
            self.group_by,
            self.timespan,
            self.threshold,
            self.value_field,
        )


@dataclass(slots=True)
class Ruleset:
    """A loaded, linked ruleset."""

    rules: dict[str, Rule]
    """Every rule by ID."""
    roots: list[Rule]
    """Rules with no parent, tried in load order for every event."""
    sources: tuple[str, ...] = ()
    """The files it was loaded from."""
    sid_listeners: dict[str, list[Rule]] = field(default_factory=dict)
    """Rule ID -> correlation rules whose ``if_matched_sid`` names it."""
    group_listeners: dict[str, list[Rule]] = field(default_factory=dict)
    """Group -> correlation rules whose ``if_matched_group`` names it."""
    detections: tuple[Detection, ...] = ()
    """Rules tried on every event beside the tree (Sigma), in load order."""
    correlations: tuple[CorrelationSpec, ...] = ()
    """Sigma correlation rules, fed by ``detections``."""

    def __len__(self) -> int:
        return len(self.rules)

    def listeners_for(self, rule: Rule) -> list[Rule]:
        """Correlation rules that count events ending at ``rule`` (by ID or by group)."""
        out = list(self.sid_listeners.get(rule.id, ()))
        for group in rule.groups:
            for listener in self.group_listeners.get(group, ()):
                if listener not in out:
                    out.append(listener)
        return out
