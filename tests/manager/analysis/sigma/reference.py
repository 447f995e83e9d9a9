"""The reference our Sigma engine is held to: pySigma's SQLite backend, run over real events.

Each Sigma rule is converted by ``pySigma-backend-sqlite`` into SQL and run over the events in
an SQLite table ``logs`` (one column per dotted CloudTrail field; nested objects flattened,
arrays as JSON text, text columns ``COLLATE NOCASE`` as the backend asks for Sigma's
case-insensitive equality, ``REGEXP`` bound to Python's ``re.search``). The row IDs a rule's
query returns are the events the reference says it matches.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation
from sigma.rule import SigmaDetectionItem, SigmaRule
from sigma.types import Placeholder, SigmaString

from tests.fixtures.datasets import dataset_files
from trailwarden.common.logfile import read_file

FILES = Path(__file__).resolve().parents[3] / "files"
SIGMAHQ = FILES / "sigma" / "sigmahq"


def dataset_records() -> list[dict[str, Any]]:
    """Every real CloudTrail record committed under tests/files/datasets (manifest-checked:
    a missing or altered file is a loud DatasetError)."""
    records: list[dict[str, Any]] = []
    for path in dataset_files():
        records.extend(item.record for item in read_file(str(path)).records)
    return records


def _flatten(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, name + ".")
        elif isinstance(value, list):
            yield name, json.dumps(value, separators=(",", ":"))
        else:
            yield name, value


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


class ReferenceTable:
    """The events in an in-memory SQLite table, queried with the backend's SQL."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.backend = sqliteBackend()
        self.db = sqlite3.connect(":memory:")
        self.db.create_function("REGEXP", 2, _regexp, deterministic=True)
        # SQLite column names are case-insensitive: fields differing only in case (rare, deep
        # inside requestParameters) share one column, under the first spelling met.
        rows = [{name.lower(): value for name, value in _flatten(record)} for record in records]
        spelling: dict[str, str] = {}
        for record in records:
            for name, _ in _flatten(record):
                spelling.setdefault(name.lower(), name)
        columns = sorted(spelling)
        self.columns = set(columns)
        self.db.execute(
            "CREATE TABLE logs ("
            + ", ".join(f"{_quote(spelling[name])} COLLATE NOCASE" for name in columns)
            + ")"
        )
        placeholders = ", ".join("?" for _ in columns)
        self.db.executemany(
            f"INSERT INTO logs (rowid, {', '.join(_quote(spelling[c]) for c in columns)}) "
            f"VALUES (?, {placeholders})",
            [(index, *(row.get(name) for name in columns)) for index, row in enumerate(rows)],
        )

    def matches(self, rule: SigmaRule) -> set[int]:
        """Positions of the records the rule's SQL selects."""
        for name in self.backend.required_fields(rule):
            if name.lower() not in self.columns:  # a field no event has: a column of NULLs
                self.db.execute(f"ALTER TABLE logs ADD COLUMN {_quote(name)} COLLATE NOCASE")
                self.columns.add(name.lower())
        found: set[int] = set()
        for query in self.backend.convert_rule(_fill_placeholders(rule)):
            selected = query.replace("SELECT * FROM", "SELECT rowid FROM", 1)
            found.update(row[0] for row in self.db.execute(selected))
        return found


UNFILLED = "<no value list configured: 7f3a1c>"
"""What an ``|expand`` placeholder becomes for the reference: a value no event holds, since
our engine matches an unfilled placeholder against nothing."""


def _fill_placeholders(rule: SigmaRule) -> SigmaRule:
    names = {
        part.name
        for detection in rule.detection.detections.values()
        for item in detection.detection_items
        if isinstance(item, SigmaDetectionItem)
        for value in item.value
        if isinstance(value, SigmaString)
        for part in value.s
        if isinstance(part, Placeholder)
    }
    if not names:
        return rule
    pipeline = ProcessingPipeline(
        items=[
            ProcessingItem(
                ValueListPlaceholderTransformation(),
            )
        ],
        vars={name: [UNFILLED] for name in names},
    )
    pipeline.apply(rule)
    return rule


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


REFUSED_BY_PYSIGMA = {
    # Uses the aggregation syntax (``| count() by ...``) Sigma replaced by correlation rules.
    "aws_cloudtrail_discovery_api_calls.yml": (
        "52a27427-d366-4152-b728-f0157aa2ba64",
        "pipe syntax in Sigma conditions has been deprecated",
    ),
    "aws_secretsmanager_mass_secret_retrieval.yml": (
        "45251c1d-3fda-47d4-a990-b7ce4d635fc0",
        "pipe syntax in Sigma conditions has been deprecated",
    ),
    # ``falsepositives`` is a block of text, where the specification wants a list.
    "aws_kms_import_key_material.yml": (
        "1279262f-1464-422f-ac0d-5b545320c526",
        "falsepositives must be a list",
    ),
}
"""SigmaHQ files pySigma itself (so every pySigma backend) refuses: (rule ID, its reason)."""


def loadable_files(folder: Path = SIGMAHQ) -> list[Path]:
    """The committed SigmaHQ rule files pySigma accepts."""
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise FileNotFoundError(f"no Sigma rules in {folder}")
    return [path for path in files if path.name not in REFUSED_BY_PYSIGMA]


def sigma_rules(folder: Path) -> list[tuple[Path, SigmaRule]]:
    """The (non-correlation) Sigma rules of every loadable file in ``folder``."""
    out = []
    for path in loadable_files(folder):
        for rule in SigmaCollection.from_yaml(path.read_text(encoding="utf-8")).rules:
            if isinstance(rule, SigmaRule):
                out.append((path, rule))
    return out
