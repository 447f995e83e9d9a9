"""The whole SigmaHQ CloudTrail folder (committed under tests/files/sigma/sigmahq) loads."""

from __future__ import annotations

import pytest

from tests.manager.analysis.sigma.reference import REFUSED_BY_PYSIGMA, SIGMAHQ, loadable_files
from trailwarden.common.errors import RulesetError
from trailwarden.manager.analysis.ruleset import load_rules


def test_every_sigmahq_cloudtrail_rule_pysigma_accepts_loads() -> None:
    files = loadable_files()
    ruleset = load_rules(files)
    assert len(ruleset.detections) + len(ruleset.correlations) == len(files)
    for detection in ruleset.detections:
        rule = detection.rule
        assert rule.metadata["language"] == "sigma"
        assert rule.description_source == rule.metadata["title"]
        assert rule.level in (3, 5, 8, 12, 15)
        assert "falsepositives" in rule.metadata and "references" in rule.metadata
    # Most SigmaHQ CloudTrail rules name their eventName or eventSource: indexed, not tried
    # on every event.
    indexed = [d for d in ruleset.detections if d.index_field is not None]
    assert len(indexed) >= len(ruleset.detections) - 3


def test_the_rule_pysigma_refuses_is_refused_with_file_and_id() -> None:
    for name, reason in REFUSED_BY_PYSIGMA.items():
        with pytest.raises(RulesetError) as refused:
            load_rules([SIGMAHQ / name])
        (error,) = refused.value.errors
        assert error.file.endswith(name)
        assert reason in error.reason
        assert "52a27427-d366-4152-b728-f0157aa2ba64" in error.reason


def test_licence_and_source_note_are_committed() -> None:
    licence = (SIGMAHQ.parent / "LICENSE.Detection.Rules.md").read_text(encoding="utf-8")
    assert "Detection Rule License" in licence
    assert "SigmaHQ/sigma" in (SIGMAHQ.parent / "SOURCE.md").read_text(encoding="utf-8")
