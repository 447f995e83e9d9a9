"""Helpers for the Sigma tests: rules written from a detection, matched through the Analyzer."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.manager.analysis.helpers import run
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules.model import Ruleset
from trailwarden.manager.analysis.ruleset import load_rules

_COUNTER = itertools.count(1)


def sigma_rule(
    detection: dict[str, Any],
    *,
    rule_id: str | None = None,
    level: str = "medium",
    logsource: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Sigma rule document around ``detection`` (logsource aws/cloudtrail by default)."""
    return {
        "title": f"test rule {next(_COUNTER)}",
        "id": rule_id or str(uuid.uuid4()),
        "status": "test",
        "logsource": logsource or {"product": "aws", "service": "cloudtrail"},
        "detection": detection,
        "level": level,
        **extra,
    }


def write_rules(folder: Path, *documents: dict[str, Any], name: str = "rules.yml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


def load(folder: Path, *documents: dict[str, Any]) -> Ruleset:
    return load_rules([write_rules(folder, *documents)])


def matcher(folder: Path, detection: dict[str, Any]) -> Analyzer:
    """An Analyzer holding one Sigma rule with ``detection``."""
    return Analyzer(load(folder, sigma_rule(detection)), "manager-test")


def matches(analyzer: Analyzer, rec: dict[str, Any]) -> bool:
    outcome = run(analyzer, rec)
    return bool(outcome.sigma_hits)


def sigma_ids(analyzer: Analyzer, rec: dict[str, Any]) -> list[str]:
    return [alert.rule.id for alert in run(analyzer, rec).sigma_alerts]
