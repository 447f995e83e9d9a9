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
    # Nearly every SigmaHQ CloudTrail rule names its eventName or eventSource, so it is
    # filed under those values; only the few that name neither meet every event.
    always = [d.rule.id for d in ruleset.detections if d.index_field is None]
    assert len(always) <= 1, always


def test_the_rule_pysigma_refuses_is_refused_with_file_and_id() -> None:
    for name, (rule_id, reason) in REFUSED_BY_PYSIGMA.items():
        with pytest.raises(RulesetError) as refused:
            load_rules([SIGMAHQ / name])
        (error,) = refused.value.errors
        assert error.file.endswith(name)
        assert reason in error.reason
        assert rule_id in error.reason


def test_licence_and_source_note_are_committed() -> None:
    licence = (SIGMAHQ.parent / "LICENSE.Detection.Rules.md").read_text(encoding="utf-8")
    assert "Detection Rule License" in licence
    assert "SigmaHQ/sigma" in (SIGMAHQ.parent / "SOURCE.md").read_text(encoding="utf-8")
