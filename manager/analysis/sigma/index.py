"""Which events can a Sigma rule match? What its condition requires of one field.

A condition that is, at its top level, ``eventName: A or B`` ANDed with anything else can only
match events whose eventName is A or B (case-insensitively): the rule is filed under those
values, and an event meets only the rules filed under its own values. Where a rule names no
exact value, a required prefix (``eventName|startswith: [Create, Delete]``) or a required piece
of text (``userIdentity.arn|re: '.+:assumed-role/aws:.+'`` needs ``:assumed-role/aws:``) is a
gate checked with one ``startswith``/``in`` on the event's lower-cased value before the rule
runs. This is what keeps analysis as fast per record with the SigmaHQ ruleset loaded as without
it. The analysis is conservative: ``cased`` values, inner wildcards and anything under ``not``
constrain nothing, and only fields CloudTrail always fills with a string are used (an array's
elements are matched one by one, so its text says nothing).
"""

from __future__ import annotations

from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionOR,
)
from sigma.rule import SigmaRule
from sigma.types import SigmaRegularExpression

from trailwarden.manager.analysis.sigma.conditions import EVENT_ROOT
from trailwarden.manager.analysis.sigma.values import plain_shape, required_literal

INDEX_FIELDS = ("eventName", "eventSource")
"""Fields preferred for filing rules (eventName is the most selective)."""
OTHER_INDEX_FIELDS = frozenset(
    {
        "eventType",
        "userAgent",
        "userIdentity.type",
        "userIdentity.arn",
        "awsRegion",
        "errorCode",
        "eventCategory",
    }
)
"""Other CloudTrail fields that always hold a string (never an array)."""

EXACT, PREFIX, CONTAINS = "exact", "prefix", "contains"
_STRENGTH = {EXACT: 0, PREFIX: 1, CONTAINS: 2}

Gate = tuple[str, frozenset[str]]
"""(kind, lower-cased texts): the field's value is one of / starts with one of / contains one of."""
Required = dict[str, Gate]


def _weaken(gate: Gate, kind: str) -> Gate:
    """The same constraint stated as a weaker kind (an exact value is also a prefix of itself,
    and contained in itself)."""
    return (kind, gate[1])


def _or(first: Gate, second: Gate) -> Gate:
    kind = max(first[0], second[0], key=_STRENGTH.__getitem__)
    return kind, _weaken(first, kind)[1] | _weaken(second, kind)[1]


def _and(first: Gate, second: Gate) -> Gate:
    if first[0] == second[0] == EXACT:
        return EXACT, first[1] & second[1]
    return min(first, second, key=lambda gate: _STRENGTH[gate[0]])


def _required(item: Any) -> Required:
    if isinstance(item, ConditionFieldEqualsValueExpression):
        if item.field not in INDEX_FIELDS and item.field not in OTHER_INDEX_FIELDS:
            return {}
        value = item.value
        if isinstance(value, SigmaRegularExpression):
            needed = required_literal(str(value.regexp))
            return {item.field: (CONTAINS, frozenset({needed.lower()}))} if needed else {}
        shape = plain_shape(value)
        if shape is None or shape[0] in ("any", "suffix"):
            return {}
        kind = {"exact": EXACT, "prefix": PREFIX, "contains": CONTAINS}[shape[0]]
        return {item.field: (kind, frozenset({shape[1]}))}
    if isinstance(item, ConditionAND):
        out: Required = {}
        for arg in item.args:
            for name, gate in _required(arg).items():
                out[name] = _and(out[name], gate) if name in out else gate
        return out
    if isinstance(item, ConditionOR):
        branches = [_required(arg) for arg in item.args]
        if not branches:
            return {}
        common = set(branches[0]).intersection(*branches[1:])
        merged: Required = {}
        for name in common:
            gate = branches[0][name]
            for branch in branches[1:]:
                gate = _or(gate, branch[name])
            merged[name] = gate
        return merged
    return {}


def index_of(rule: SigmaRule) -> tuple[str | None, str, frozenset[str]]:
    """(decoded field, gate kind, texts) the rule is filed under; (None, "", ∅): it meets
    every event."""
    trees = [condition.parsed for condition in rule.detection.parsed_condition]
    per_condition = [_required(tree) if tree is not None else {} for tree in trees]
    if not per_condition:
        return None, "", frozenset()
    common: Required = dict(per_condition[0])
    for required in per_condition[1:]:
        common = {
            name: _or(gate, required[name]) for name, gate in common.items() if name in required
        }
    if not common:
        return None, "", frozenset()

    def preference(name: str) -> tuple[int, int, str]:
        field_rank = INDEX_FIELDS.index(name) if name in INDEX_FIELDS else len(INDEX_FIELDS)
        return _STRENGTH[common[name][0]], field_rank, name

    best = min(common, key=preference)
    kind, texts = common[best]
    return f"{EVENT_ROOT}.{best}", kind, texts
