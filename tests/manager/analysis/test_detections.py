"""Every detection of the default ruleset on its own positive and negative cases
(tests/files/detections, one file a rule; the format is in that folder's README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.manager.analysis.helpers import BASE_RECORD, FILES, fired, run
from trailwarden.manager.analysis.mitre import TECHNIQUES
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset
from trailwarden.manager.analysis.rules.model import Rule

CASES = FILES / "detections"
FIRST_DETECTION_ID = 80500
"""IDs below are Wazuh's documented base rules (80200-80299), tested in test_default_rules."""


def _case_files() -> list[Path]:
    files = sorted(CASES.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no detection cases in {CASES}")
    return files


def _load(path: Path) -> dict[str, Any]:
    spec = json.loads(path.read_text())
    missing = {"rule", "level", "positive", "negative"} - spec.keys()
    if missing:
        raise ValueError(f"{path.name}: missing {sorted(missing)}")
    if not spec["positive"] or not spec["negative"]:
        raise ValueError(f"{path.name}: needs at least one positive and one negative case")
    if not path.name.startswith(f"{spec['rule']}-"):
        raise ValueError(f"{path.name}: the file name must start with the rule id {spec['rule']}")
    return dict(spec)


def _records(case: dict[str, Any], path: Path, index: int) -> list[dict[str, Any]]:
    fields = case.get("sequence", [case])
    out = []
    for n, changes in enumerate(fields):
        rec = dict(BASE_RECORD)
        rec["eventID"] = f"{path.stem}-{index}-{n}"
        rec.update(changes)
        out.append(rec)
    return out


def _cases(kind: str) -> list[Any]:
    params = []
    for path in _case_files():
        spec = _load(path)
        for index, case in enumerate(spec[kind]):
            params.append(pytest.param(path, spec, index, case, id=f"{path.stem}-{kind}{index}"))
    return params


@pytest.mark.parametrize(("path", "spec", "index", "case"), _cases("positive"))
def test_positive_case_fires_the_rule(
    default_ruleset: Ruleset, path: Path, spec: dict[str, Any], index: int, case: dict[str, Any]
) -> None:
    analyzer = Analyzer(default_ruleset, "manager-test")
    outcomes = [run(analyzer, rec) for rec in _records(case, path, index)]
    alert = outcomes[-1].alert
    assert alert is not None, f"{path.name} positive {index}: no alert"
    assert alert.rule.id == spec["rule"], f"{path.name} positive {index}: fired {alert.rule.id}"
    assert alert.rule.level == spec["level"]
    assert alert.rule.mitre_ids, f"rule {spec['rule']} has no MITRE technique"
    principal = spec.get("principal", "carol")
    assert principal in alert.rule.description, (
        f"rule {spec['rule']}: description {alert.rule.description!r} does not name {principal}"
    )


@pytest.mark.parametrize(("path", "spec", "index", "case"), _cases("negative"))
def test_negative_case_does_not_fire_the_rule(
    default_ruleset: Ruleset, path: Path, spec: dict[str, Any], index: int, case: dict[str, Any]
) -> None:
    analyzer = Analyzer(default_ruleset, "manager-test")
    fired_ids = [fired(run(analyzer, rec)) for rec in _records(case, path, index)]
    assert spec["rule"] not in fired_ids, f"{path.name} negative {index} fired {spec['rule']}"


def test_every_detection_has_cases(default_ruleset: Ruleset) -> None:
    covered = {_load(path)["rule"] for path in _case_files()}
    detections = {rule.id for rule in _detections(default_ruleset)}
    assert len(detections) > 30, "the default ruleset lost its detections"
    uncovered = sorted(rule_id for rule_id in detections - covered if int(rule_id) >= CASES_FROM)
    assert uncovered == []


CASES_FROM = FIRST_DETECTION_ID
"""Detections from this ID up must have case files: all of them."""


def _detections(ruleset: Ruleset) -> list[Rule]:
    return [
        rule
        for rule in ruleset.rules.values()
        if rule.level >= 5 and int(rule.id) >= FIRST_DETECTION_ID
    ]


def test_every_detection_names_known_techniques_and_compliance(default_ruleset: Ruleset) -> None:
    # The tactic of an alert comes from mitre.py's table: a technique missing there would give
    # an alert without its tactic. Compliance groups as Wazuh's rules carry them.
    problems = []
    for rule in _detections(default_ruleset):
        unknown = [t for t in rule.mitre_ids if t not in TECHNIQUES]
        if not rule.mitre_ids or unknown:
            problems.append(
                f"{rule.id} ({rule.location}): MITRE {rule.mitre_ids} unknown {unknown}"
            )
        for framework in ("pci_dss_", "gdpr_", "hipaa_", "nist_800_53_", "tsc_"):
            if not any(group.startswith(framework) for group in rule.groups):
                problems.append(f"{rule.id} ({rule.location}): no {framework}* group")
    assert problems == []


def test_every_rule_testing_event_name_tests_event_source(default_ruleset: Ruleset) -> None:
    # Issue 17: the same API name exists in several services (DeleteDetector, DeleteLogGroup).
    missing = [
        f"{rule.id} ({rule.location})"
        for rule in default_ruleset.rules.values()
        if rule.id.isdigit()
        and any(test.name == "aws.eventName" and not test.pattern.negated for test in rule.fields)
        and not any(test.name == "aws.eventSource" for test in rule.fields)
    ]
    assert missing == []
