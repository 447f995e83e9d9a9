"""Load Sigma rule files (``.yml``/``.yaml``) through pySigma, collecting every error.

pySigma parses each file (one or more YAML documents: rules, correlation rules, filters) into
its rule objects, applies the value modifiers and resolves correlation references across all the
files given; this module checks what we can run, compiles each rule's condition
(``conditions.py``) and builds our rule model: a ``Detection`` per Sigma rule, a
``CorrelationSpec`` per correlation rule. Refused, each with the file and the rule ID: a
logsource other than ``product: aws, service: cloudtrail``, a rule without an ID, a duplicate
ID, a value or modifier this engine cannot evaluate (placeholders, regexes needing
backtracking, timestamp parts), correlation types other than ``event_count``, ``value_count``
and ``temporal``, and correlation conditions that can only be decided when a window closes
(``lt``, ``lte``, ``eq``, ``neq``). Nothing is dropped silently: one refusal refuses the ruleset.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from trailwarden.common.errors import RuleError
from trailwarden.manager.analysis.rules.model import (
    CorrelationSpec,
    DescriptionPart,
    Detection,
    Rule,
)
from trailwarden.manager.analysis.sigma.conditions import compile_rule
from trailwarden.manager.analysis.sigma.index import index_of
from trailwarden.manager.analysis.sigma.mapping import (
    GROUPS,
    level_of,
    metadata_of,
    mitre_of,
)
from trailwarden.manager.analysis.sigma.values import UnsupportedValue, placeholders

log = logging.getLogger(__name__)

SIGMA_SUFFIXES = (".yml", ".yaml")
PRODUCT = "aws"
SERVICE = "cloudtrail"
_KINDS = {
    SigmaCorrelationType.EVENT_COUNT: "event_count",
    SigmaCorrelationType.VALUE_COUNT: "value_count",
    SigmaCorrelationType.TEMPORAL: "temporal",
}


def is_sigma_file(path: Path) -> bool:
    return path.suffix.lower() in SIGMA_SUFFIXES


@dataclass(slots=True)
class SigmaRules:
    """What the Sigma files of a ruleset gave: rules by ID, in load order, and the errors."""

    rules: dict[str, Rule] = field(default_factory=dict)
    detections: list[Detection] = field(default_factory=list)
    correlations: list[CorrelationSpec] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)


def load_sigma(files: Sequence[Path], first_order: int = 0) -> SigmaRules:
    """Parse, check and compile the Sigma rules in ``files`` (errors collected, not raised)."""
    out = SigmaRules()
    collections: list[SigmaCollection] = []
    texts: dict[str, str] = {}
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.errors.append(RuleError(f"cannot read: {exc}", file=str(file)))
            continue
        texts[str(file)] = text
        try:
            shape = _not_mappings(text)
            if shape is not None:
                out.errors.append(RuleError(f"not a Sigma rule file: {shape}", file=str(file)))
                continue
            collection = SigmaCollection.from_yaml(
                text, collect_errors=True, source=SigmaRuleLocation(file)
            )
        except (SigmaError, yaml.YAMLError) as exc:
            out.errors.append(RuleError(f"not a Sigma rule file: {exc}", file=str(file)))
            continue
        _collect_parse_errors(collection, file, text, out.errors)
        if not collection.rules and not collection.errors:
            out.errors.append(RuleError("holds no Sigma rules", file=str(file)))
        collections.append(collection)
    merged = SigmaCollection.merge(collections)
    merged.rules = [rule for rule in merged.rules if not rule.errors]
    try:
        merged.resolve_rule_references()
    except SigmaError as exc:
        out.errors.append(RuleError(f"correlation reference: {exc}", file=_file_of(exc)))
        return out
    builder = _Builder(out, texts, first_order)
    for rule in merged.rules:
        if isinstance(rule, SigmaRule):
            builder.rule(rule)
    for rule in merged.rules:
        if isinstance(rule, SigmaCorrelationRule):
            builder.correlation(rule)
    return out


def _not_mappings(text: str) -> str | None:
    """What is wrong when a YAML document of ``text`` is not a mapping (pySigma assumes each
    is one and fails with an AttributeError on a list or a plain string), else None."""
    for number, document in enumerate(yaml.safe_load_all(text), start=1):
        if document is not None and not isinstance(document, dict):
            kind = "a list" if isinstance(document, list) else f"a {type(document).__name__}"
            return f"YAML document {number} is {kind}, not a rule (a mapping of title, id ...)"
    return None


def _placeholders(rule: SigmaRule) -> list[str]:
    names: list[str] = []
    pending: list[Any] = list(rule.detection.detections.values())
    while pending:
        item = pending.pop()
        if isinstance(item, SigmaDetection):
            pending.extend(item.detection_items)
        elif isinstance(item, SigmaDetectionItem):
            for value in item.value:
                names.extend(placeholders(value))
    return names


def _file_of(error: SigmaError) -> str:
    source = getattr(error, "source", None)
    return str(source.path) if source is not None else ""


def _collect_parse_errors(
    collection: SigmaCollection, file: Path, text: str, errors: list[RuleError]
) -> None:
    attached = set()
    for rule in collection.rules:
        for error in rule.errors:
            attached.add(id(error))
            rule_id = str(rule.id) if rule.id else "(no id)"
            errors.append(
                RuleError(
                    f"rule {rule_id}: {_reason(error)}", file=str(file), line=_line(text, rule_id)
                )
            )
    for error in collection.errors:
        if id(error) not in attached:
            errors.append(RuleError(_reason(error), file=str(file)))


def _reason(error: Exception) -> str:
    # pySigma appends " in <absolute path>" to its messages; we name the file ourselves.
    return getattr(error, "args", [str(error)])[0] if error.args else str(error)


def _line(text: str, rule_id: str) -> int:
    match = re.search(rf"^id:\s*['\"]?{re.escape(rule_id)}", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 0


class _Builder:
    def __init__(self, out: SigmaRules, texts: dict[str, str], first_order: int) -> None:
        self.out = out
        self.texts = texts
        self.order = first_order

    def _where(self, rule: SigmaRule | SigmaCorrelationRule) -> tuple[str, str, int]:
        file = str(rule.source.path) if rule.source is not None else ""
        rule_id = str(rule.id) if rule.id else ""
        return file, rule_id, _line(self.texts.get(file, ""), rule_id) if rule_id else 0

    def _refuse(self, rule: SigmaRule | SigmaCorrelationRule, reason: str) -> None:
        file, rule_id, line = self._where(rule)
        self.out.errors.append(
            RuleError(f"rule {rule_id or '(no id)'} ({rule.title}): {reason}", file=file, line=line)
        )

    def _model(self, rule: SigmaRule | SigmaCorrelationRule) -> Rule | None:
        file, rule_id, line = self._where(rule)
        if not rule_id:
            self._refuse(rule, "has no id (alerts name the Sigma id)")
            return None
        if rule_id in self.out.rules:
            self._refuse(rule, f"duplicate id (also in {self.out.rules[rule_id].location})")
            return None
        techniques, tactics = mitre_of(rule)
        self.order += 1
        model = Rule(
            id=rule_id,
            level=level_of(rule),
            file=file,
            line=line,
            description=(DescriptionPart(rule.title),),
            description_source=rule.title,
            groups=GROUPS,
            mitre_ids=techniques,
            mitre_tactics=tactics,
            order=self.order,
            metadata=metadata_of(rule, file),
        )
        return model

    def rule(self, rule: SigmaRule) -> None:
        source = rule.logsource
        if (source.product or "").lower() != PRODUCT or (source.service or "").lower() != SERVICE:
            self._refuse(
                rule,
                f"logsource product={source.product} service={source.service} "
                f"category={source.category}: only product: {PRODUCT}, service: {SERVICE} "
                "runs on CloudTrail events",
            )
            return
        try:
            test = compile_rule(rule)
            index_field, index_kind, index_values = index_of(rule)
        except (UnsupportedValue, SigmaError) as exc:
            self._refuse(rule, f"cannot run: {exc}")
            return
        model = self._model(rule)
        if model is None:
            return
        unfilled = sorted(set(_placeholders(rule)))
        if unfilled:
            model.metadata = {**model.metadata, "unfilled_placeholders": unfilled}
            log.warning(
                "stage=rules sigma rule=%s file=%s placeholders=%s match no value "
                "(no value list configured)",
                model.id,
                model.file,
                ",".join(unfilled),
            )
        self.out.rules[model.id] = model
        self.out.detections.append(
            Detection(
                model,
                test,
                index_field,
                index_values,
                index_kind or "exact",
                alerts=rule._output,
            )
        )

    def correlation(self, rule: SigmaCorrelationRule) -> None:
        kind = _KINDS.get(rule.type)
        if kind is None:
            self._refuse(
                rule,
                f"correlation type {rule.type.name.lower()} is not supported "
                "(event_count, value_count and temporal are)",
            )
            return
        condition = rule.condition
        refs = rule.referenced_rules
        if any(not isinstance(ref.rule, SigmaRule) for ref in refs):
            self._refuse(rule, "correlations of correlations are not supported")
            return
        ref_ids = tuple(str(ref.rule.id) for ref in refs)
        missing = [ref for ref in ref_ids if ref not in self.out.rules]
        if missing:
            self._refuse(rule, f"references rules that were refused: {', '.join(missing)}")
            return
        if kind == "temporal":
            if condition is not None and not isinstance(condition, SigmaCorrelationCondition):
                self._refuse(rule, "extended temporal conditions are not supported")
                return
            threshold = len(ref_ids)
            if isinstance(condition, SigmaCorrelationCondition):
                threshold = self._threshold(rule, condition)
                if threshold < 0:
                    return
        else:
            assert isinstance(condition, SigmaCorrelationCondition)
            threshold = self._threshold(rule, condition)
            if threshold < 0:
                return
        group_by = tuple(
            tuple(self._alias(rule, name, ref.reference) for name in (rule.group_by or ()))
            for ref in refs
        )
        value_field: tuple[str, ...] = ()
        if kind == "value_count":
            assert isinstance(condition, SigmaCorrelationCondition)
            fieldref = condition.fieldref
            if not isinstance(fieldref, str):
                self._refuse(rule, "value_count needs exactly one field")
                return
            value_field = tuple(self._alias(rule, fieldref, ref.reference) for ref in refs)
        model = self._model(rule)
        if model is None:
            return
        self.out.rules[model.id] = model
        self.out.correlations.append(
            CorrelationSpec(
                model, kind, ref_ids, group_by, rule.timespan.seconds, threshold, value_field
            )
        )

    def _threshold(self, rule: SigmaCorrelationRule, condition: SigmaCorrelationCondition) -> int:
        op = condition.op
        if op is SigmaCorrelationConditionOperator.GTE:
            return max(1, math.ceil(condition.count))
        if op is SigmaCorrelationConditionOperator.GT:
            return max(1, math.floor(condition.count) + 1)
        self._refuse(
            rule,
            f"condition {op.name.lower()} can only be decided when a window closes; "
            "streaming correlation supports gte and gt",
        )
        return -1

    def _alias(self, rule: SigmaCorrelationRule, name: str, reference: str) -> str:
        alias = rule.aliases.aliases.get(name)
        if alias is None:
            return name
        for ref, mapped in alias.mapping.items():
            if ref.reference == reference:
                return mapped
        return name
