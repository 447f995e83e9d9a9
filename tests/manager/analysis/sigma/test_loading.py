"""Loading Sigma files: where XML rules load, what is refused (file and rule id), alerts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.manager.analysis.helpers import RULES, record, run
from tests.manager.analysis.sigma.helpers import sigma_rule, write_rules
from trailwarden.common.errors import RulesetError
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths
from trailwarden.manager.analysis.ruleset import load_rules

STOP_LOGGING = {"sel": {"eventName": "StopLogging"}, "condition": "sel"}


def _refusal(tmp_path: Path, *docs: dict[str, object]) -> list[str]:
    path = write_rules(tmp_path, *docs)
    with pytest.raises(RulesetError) as refused:
        load_rules([path])
    for error in refused.value.errors:
        assert error.file == str(path)
    return [error.reason for error in refused.value.errors]


def test_other_logsources_are_refused_with_file_and_rule_id(tmp_path: Path) -> None:
    windows = sigma_rule(
        STOP_LOGGING,
        rule_id="44444444-0000-0000-0000-000000000001",
        logsource={"product": "windows", "category": "process_creation"},
    )
    (reason,) = _refusal(tmp_path, windows)
    assert "44444444-0000-0000-0000-000000000001" in reason
    assert "product=windows" in reason and "only product: aws, service: cloudtrail" in reason


def test_every_error_of_every_rule_is_collected(tmp_path: Path) -> None:
    reasons = _refusal(
        tmp_path,
        sigma_rule(
            {"sel": {"eventName": "A"}, "condition": "sel and missing"},
            rule_id="44444444-0000-0000-0000-000000000002",
        ),
        sigma_rule(
            {"sel": {"userAgent|re": "(a)\\1"}, "condition": "sel"},
            rule_id="44444444-0000-0000-0000-000000000003",
        ),
        sigma_rule(STOP_LOGGING, rule_id="44444444-0000-0000-0000-000000000004"),
        sigma_rule(STOP_LOGGING, rule_id="44444444-0000-0000-0000-000000000004"),
        sigma_rule(
            {"sel": {"eventName|nosuchmodifier": "A"}, "condition": "sel"},
            rule_id="44444444-0000-0000-0000-000000000005",
        ),
    )
    assert len(reasons) == 4, reasons
    assert any("000000000002" in r and "not defined" in r for r in reasons)
    # A back-reference needs a backtracking engine: refused (pySigma already checks regexes
    # with RE2 when it is installed, as it is here).
    assert any("000000000003" in r and "invalid" in r for r in reasons)
    assert any("000000000004" in r and "duplicate id" in r for r in reasons)
    assert any("000000000005" in r for r in reasons)


def test_a_file_with_no_rule_and_a_broken_yaml_file_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("# nothing\n")
    broken = tmp_path / "broken.yml"
    broken.write_text("title: [\n")
    with pytest.raises(RulesetError) as refused:
        load_rules([empty, broken])
    files = sorted(Path(e.file).name for e in refused.value.errors)
    assert files == ["broken.yml", "empty.yml"]


def test_a_yaml_file_of_a_list_or_a_string_is_refused_not_a_crash(tmp_path: Path) -> None:
    # pySigma assumes every YAML document is a mapping: a list or a bare string made
    # `rules check` end in an AttributeError traceback.
    listed = tmp_path / "list.yaml"
    listed.write_text("[1, 2]\n")
    text = tmp_path / "notes.yml"
    text.write_text("just some notes\n")
    second = tmp_path / "two.yml"
    rule = sigma_rule({"selection": {"eventName": "StopLogging"}, "condition": "selection"})
    second.write_text(yaml.safe_dump(rule) + "---\n- a\n")
    with pytest.raises(RulesetError) as refused:
        load_rules([listed, text, second])
    reasons = {Path(e.file).name: e.reason for e in refused.value.errors}
    assert reasons["list.yaml"] == (
        "not a Sigma rule file: YAML document 1 is a list, not a rule (a mapping of title, id ...)"
    )
    assert "YAML document 1 is a str" in reasons["notes.yml"]
    assert "YAML document 2 is a list" in reasons["two.yml"]
    check = subprocess.run(
        [sys.executable, "-m", "trailwarden.manager.logtest", "rules", "check", str(listed)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert f"{listed}: not a Sigma rule file" in check.stderr


def test_a_sigma_id_must_be_a_uuid_so_it_never_clashes_with_a_wazuh_id(tmp_path: Path) -> None:
    path = write_rules(tmp_path, sigma_rule(STOP_LOGGING, rule_id="80202"))
    with pytest.raises(RulesetError, match="rule 80202: Sigma rule identifier must be an UUID"):
        load_rules([*default_ruleset_paths(), path])


def test_sigma_and_xml_rules_run_side_by_side_and_alert_each(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        sigma_rule(
            STOP_LOGGING,
            rule_id="44444444-0000-0000-0000-000000000010",
            level="critical",
            tags=["attack.defense-evasion", "attack.t1562.008"],
            falsepositives=["maintenance"],
            references=["https://example.com/r"],
        ),
    )
    ruleset = load_rules([*default_ruleset_paths(), tmp_path])  # a folder of .yml loads too
    assert str(path) in ruleset.sources
    analyzer = Analyzer(ruleset, "manager-test")
    outcome = run(analyzer, record(eventName="StopLogging", eventSource="cloudtrail.amazonaws.com"))
    assert outcome.alert is not None and outcome.alert.rule.id.isdigit()  # the XML rule
    (sigma,) = outcome.sigma_alerts
    assert sigma.rule.id == "44444444-0000-0000-0000-000000000010"
    assert sigma.rule.level == 15
    document = sigma.to_wazuh()
    assert document["rule"]["mitre"] == {
        "id": ["T1562.008"],
        "technique": ["Disable or Modify Cloud Logs"],  # the name, from the MITRE table
        "tactic": ["Defense Evasion"],
    }
    assert document["rule"]["groups"] == ["sigma", "aws", "cloudtrail"]
    assert document["rule"]["description"].startswith("test rule")
    rule = ruleset.rules[sigma.rule.id]
    assert rule.metadata["falsepositives"] == ["maintenance"]
    assert rule.metadata["references"] == ["https://example.com/r"]
    assert [a.rule.id for a in outcome.alerts] == [outcome.alert.rule.id, sigma.rule.id]


@pytest.mark.parametrize(
    ("level", "wazuh"),
    [("informational", 3), ("low", 5), ("medium", 8), ("high", 12), ("critical", 15)],
)
def test_level_mapping(tmp_path: Path, level: str, wazuh: int) -> None:
    ruleset = load_rules([write_rules(tmp_path, sigma_rule(STOP_LOGGING, level=level))])
    (detection,) = ruleset.detections
    assert detection.rule.level == wazuh


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trailwarden.manager.logtest", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rules_check_and_logtest_take_sigma_files(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path, sigma_rule(STOP_LOGGING, rule_id="44444444-0000-0000-0000-000000000020")
    )
    checked = _cli("rules", "check", "--json", str(path), str(RULES / "semantics.xml"))
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["ok"] is True
    event = tmp_path / "event.json"
    event.write_text(json.dumps(record(eventName="StopLogging")))
    tested = _cli("logtest", "--json", "--rules", str(path), str(event))
    assert tested.returncode == 0, tested.stderr
    (line,) = tested.stdout.splitlines()
    result = json.loads(line)
    assert result["sigma"]["matched"] == ["44444444-0000-0000-0000-000000000020"]
    assert result["sigma"]["alerts"][0]["rule"]["id"] == "44444444-0000-0000-0000-000000000020"


def test_rules_check_reports_a_refused_sigma_rule(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        sigma_rule(
            STOP_LOGGING,
            rule_id="44444444-0000-0000-0000-00000000002f",
            logsource={"product": "gcp", "service": "audit"},
        ),
    )
    checked = _cli("rules", "check", "--json", str(path))
    assert checked.returncode != 0
    (problem,) = json.loads(checked.stdout)["errors"]
    assert problem["file"] == str(path) and problem["line"] == 2
    assert "44444444-0000-0000-0000-00000000002f" in problem["message"]
