"""Try the Sigma rules an event can meet, and feed their matches to the correlation windows.

Every Sigma rule runs on every event, independently (Sigma's semantics: each matching rule is
its own alert), beside the XML rule tree. ``SigmaMatcher`` only saves the work of trying rules
that cannot match: rules are filed under the eventName or eventSource values their condition
requires (``index.py``), so an event meets the rules filed under its own values plus the few
that require neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trailwarden.manager.analysis.correlate import Correlator
from trailwarden.manager.analysis.rules.matcher import EventView
from trailwarden.manager.analysis.rules.model import CorrelationSpec, Detection, Ruleset
from trailwarden.manager.analysis.sigma.conditions import FieldNodes
from trailwarden.manager.analysis.sigma.values import MISSING


@dataclass(frozen=True, slots=True)
class SigmaHit:
    """A Sigma rule (detection or correlation) that matched one event."""

    detection: Detection | None
    correlation: CorrelationSpec | None = None

    @property
    def rule_id(self) -> str:
        if self.detection is not None:
            return self.detection.rule.id
        assert self.correlation is not None
        return self.correlation.rule.id


class SigmaMatcher:
    """A ruleset's Sigma rules, indexed for matching (built once per ruleset)."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.count = len(ruleset.detections)
        always: list[Detection] = []
        filed: dict[str, dict[str, list[Detection]]] = {}
        gated: dict[str, list[Detection]] = {}
        for detection in ruleset.detections:
            if detection.index_field is None:
                always.append(detection)
            elif detection.index_kind == "exact":
                by_value = filed.setdefault(detection.index_field, {})
                for value in detection.index_values:
                    by_value.setdefault(value, []).append(detection)
            else:
                gated.setdefault(detection.index_field, []).append(detection)
        self.always = tuple(always)
        self.filed = tuple((name, by_value) for name, by_value in filed.items())
        self.gated = tuple(
            (name, tuple((d, d.passes_gate) for d in detections))
            for name, detections in gated.items()
        )
        """Per field, rules filed under a prefix or a piece of text, each with its gate."""
        self.listeners: dict[str, list[tuple[CorrelationSpec, int]]] = {}
        for spec in ruleset.correlations:
            for position, ref in enumerate(spec.refs):
                self.listeners.setdefault(ref, []).append((spec, position))

    def candidates(self, view: EventView) -> Sequence[Detection]:
        """The rules this event can match, in load order."""
        out: Sequence[Detection] = self.always
        merged = False
        lowered = view.lowered
        for name, by_value in self.filed:
            value = lowered(name)
            if value is None:
                continue
            found = by_value.get(value)
            if found:
                if out:
                    out = [*out, *found]
                    merged = True
                else:
                    out = found
        for name, gates in self.gated:
            value = lowered(name)
            if value is None:
                continue
            passed = [detection for detection, gate in gates if gate(value)]
            if passed:
                if out:
                    out = [*out, *passed]
                    merged = True
                else:
                    out = passed
        if merged:
            out = sorted(out, key=_load_order)
        return out

    def match(
        self,
        view: EventView,
        correlator: Correlator,
        event_time: Callable[[EventView], float],
        trace: list[tuple[str, bool]] | None = None,
    ) -> list[SigmaHit]:
        """Every Sigma rule and correlation that matched the event (those to alert on are
        the detections with ``alerts`` and every correlation that fired)."""
        if not self.count:
            return []
        candidates = self.candidates(view)
        if not candidates:
            return []
        nodes = FieldNodes(view)
        hits: list[SigmaHit] = []
        for detection in candidates:
            matched = detection.test(nodes)
            if trace is not None:
                trace.append((detection.rule.id, matched))
            if not matched:
                continue
            hits.append(SigmaHit(detection))
            for spec, position in self.listeners.get(detection.rule.id, ()):
                key = (view.agent_id, *(_text(nodes.node(f)) for f in spec.group_by[position]))
                counted: object = None
                if spec.kind == "value_count":
                    counted = _text(nodes.node(spec.value_field[position]))
                elif spec.kind == "temporal":
                    counted = position
                if correlator.sigma_match(spec, key, counted, event_time(view)):
                    hits.append(SigmaHit(None, spec))
        return hits


def _load_order(detection: Detection) -> int:
    return detection.rule.order


def _text(node: Any) -> str | None:
    if node is MISSING or node is None or type(node) is dict:
        return None
    if type(node) is str:
        return node
    if type(node) is bool:
        return "true" if node else "false"
    return str(node)
