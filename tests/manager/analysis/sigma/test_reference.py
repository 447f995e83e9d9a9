"""Our Sigma engine matches exactly the events the reference converter matches, rule by rule,
for every SigmaHQ CloudTrail rule, on the real CloudTrail datasets committed under tests/files."""

from __future__ import annotations

import json

from tests.manager.analysis.helpers import AGENT, SOURCE
from tests.manager.analysis.sigma.reference import (
    SIGMAHQ,
    ReferenceTable,
    dataset_records,
    loadable_files,
    sigma_rules,
)
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.ruleset import load_rules


def test_sigmahq_rules_match_what_the_reference_backend_matches() -> None:
    records = dataset_records()
    assert len(records) == 310 + 2900 + 103
    reference = ReferenceTable(records)
    rules = sigma_rules(SIGMAHQ)
    assert rules, f"no Sigma rules in {SIGMAHQ}"

    analyzer = Analyzer(load_rules(loadable_files()), "manager-test")
    ours: dict[str, set[int]] = {str(rule.id): set() for _, rule in rules}
    for position, record in enumerate(records):
        raw = json.dumps(record).encode()
        outcome = analyzer.analyse(record, raw, SOURCE, AGENT)
        for hit in outcome.sigma_hits:
            if hit.detection is not None:
                ours[hit.rule_id].add(position)

    differences = {}
    matched_rules = 0
    for path, rule in rules:
        expected = reference.matches(rule)
        got = ours[str(rule.id)]
        matched_rules += bool(expected)
        if got != expected:
            differences[f"{path.name} {rule.id}"] = {
                "only_reference": sorted(expected - got)[:5],
                "only_ours": sorted(got - expected)[:5],
            }
    assert not differences, differences
    # Not vacuous: the datasets hold attacks several SigmaHQ rules catch.
    assert matched_rules >= 10


def test_reference_table_holds_every_record() -> None:
    records = dataset_records()
    table = ReferenceTable(records)
    (count,) = table.db.execute("SELECT count(*) FROM logs").fetchone()
    assert count == len(records)
