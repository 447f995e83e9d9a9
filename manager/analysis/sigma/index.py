"""Which events can a Sigma rule match? The exact values its condition requires of one field.

A condition that is, at its top level, ``eventName: A or B`` ANDed with anything else can only
match events whose eventName is A or B (case-insensitively): the rule is filed under those
values, and an event meets only the rules filed under its own eventName (or eventSource), plus
the few rules that constrain neither. This is what keeps analysis as fast per record with the
SigmaHQ ruleset loaded as without it. The analysis is conservative: a value with a wildcard,
``cased``, a regex or anything under ``not`` constrains nothing.
"""

from __future__ import annotations

from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionOR,
)
from sigma.rule import SigmaRule
from sigma.types import SigmaCasedString, SigmaString

from trailwarden.manager.analysis.sigma.conditions import EVENT_ROOT

INDEX_FIELDS = ("eventName", "eventSource")
"""Fields rules are filed under, in order of preference (eventName is the most selective)."""

Required = dict[str, frozenset[str]]


def _required(item: Any) -> Required:
    if isinstance(item, ConditionFieldEqualsValueExpression):
        value = item.value
        if (
            item.field in INDEX_FIELDS
            and isinstance(value, SigmaString)
            and not isinstance(value, SigmaCasedString)
            and not value.contains_special()
            and all(isinstance(part, str) for part in value.s)
        ):
            return {item.field: frozenset({value.to_plain().lower()})}
        return {}
    if isinstance(item, ConditionAND):
        out: Required = {}
        for arg in item.args:
            for name, values in _required(arg).items():
                out[name] = out[name] & values if name in out else values
        return out
    if isinstance(item, ConditionOR):
        branches = [_required(arg) for arg in item.args]
        if not branches:
            return {}
        common = set(branches[0]).intersection(*branches[1:])
        return {name: frozenset().union(*(b[name] for b in branches)) for name in common}
    return {}


def index_of(rule: SigmaRule) -> tuple[str | None, frozenset[str]]:
    """(decoded field, lower-cased values) the rule is filed under; (None, ∅) for always."""
    conditions = [condition.parsed for condition in rule.detection.parsed_condition]
    per_condition = [_required(tree) if tree is not None else {} for tree in conditions]
    for name in INDEX_FIELDS:
        if per_condition and all(name in required for required in per_condition):
            values = frozenset().union(*(required[name] for required in per_condition))
            return f"{EVENT_ROOT}.{name}", values
    return None, frozenset()
