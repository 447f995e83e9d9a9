"""Wazuh's rule options a user's file may carry: each honoured, or refused with file:line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.manager.analysis.helpers import fired, record, run
from trailwarden.common.errors import RulesetError
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "local_rules.xml"
    path.write_text(f'<group name="local,">\n{body}\n</group>\n')
    return path


def _analyzer(tmp_path: Path, body: str) -> Analyzer:
    return Analyzer(load_ruleset([*default_ruleset_paths(), _write(tmp_path, body)]), "m")


def _refusal(tmp_path: Path, body: str) -> str:
    with pytest.raises(RulesetError) as caught:
        load_ruleset([*default_ruleset_paths(), _write(tmp_path, body)])
    return str(caught.value)


def _rule(body: str, rule_id: str = "100600", level: int = 6) -> str:
    return f"""  <rule id="{rule_id}" level="{level}">
    <if_sid>80202</if_sid>
    <field name="aws.eventName">^ListUsers$</field>
    <description>listed</description>
{body}
  </rule>"""


def _document(analyzer: Analyzer) -> dict[str, object]:
    outcome = run(analyzer, record(eventName="ListUsers", eventSource="iam.amazonaws.com"))
    assert outcome.alert is not None and outcome.alert.rule.id == "100600"
    document: dict[str, object] = json.loads(outcome.alert.document())
    return document


def test_no_counter_leaves_firedtimes_out(tmp_path: Path) -> None:
    rule = _document(_analyzer(tmp_path, _rule("    <options>no_counter</options>")))["rule"]
    assert isinstance(rule, dict) and "firedtimes" not in rule


def test_alert_by_email_sets_rule_mail(tmp_path: Path) -> None:
    analyzer = _analyzer(tmp_path, _rule("    <options>alert_by_email,no_full_log</options>"))
    document = _document(analyzer)
    rule = document["rule"]
    assert isinstance(rule, dict) and rule["mail"] is True and rule["firedtimes"] == 1
    assert "full_log" not in document


def test_without_no_full_log_the_raw_record_is_kept(tmp_path: Path) -> None:
    document = _document(_analyzer(tmp_path, _rule("    <options>no_email_alert</options>")))
    rule = document["rule"]
    assert isinstance(rule, dict) and rule["mail"] is False
    assert '"eventName":"ListUsers"' in str(document["full_log"])


def test_info_and_compliance_elements_reach_the_alert(tmp_path: Path) -> None:
    body = """    <info type="link">https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUsers.html</info>
    <info>Enumeration of IAM users.</info>
    <pci_dss>10.2.5,10.6.1</pci_dss>
    <gdpr>IV_35.7.d</gdpr>
    <hipaa>164.312.b</hipaa>
    <nist_800_53>AU.6</nist_800_53>
    <tsc>CC7.2</tsc>
    <group>discovery,</group>
    <mitre><id>T1087.004</id></mitre>"""
    rule = _document(_analyzer(tmp_path, _rule(body)))["rule"]
    assert isinstance(rule, dict)
    assert rule["info"] == [
        "https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUsers.html",
        "Enumeration of IAM users.",
    ]
    assert rule["pci_dss"] == ["10.2.5", "10.6.1"] and rule["gdpr"] == ["IV_35.7.d"]
    assert rule["hipaa"] == ["164.312.b"] and rule["nist_800_53"] == ["AU.6"]
    assert rule["tsc"] == ["CC7.2"]
    assert rule["groups"] == ["local", "discovery"]
    assert rule["mitre"] == {
        "id": ["T1087.004"],
        "technique": ["Cloud Account"],
        "tactic": ["Discovery"],
    }


def test_maxsize_matches_only_records_longer_than_it(tmp_path: Path) -> None:
    analyzer = _analyzer(
        tmp_path,
        """  <rule id="100601" level="7" maxsize="2000">
    <if_sid>80202</if_sid>
    <description>an oversized record</description>
  </rule>""",
    )
    assert fired(run(analyzer, record(eventName="GetRole"))) == "80202"
    big = record(eventName="GetRole", requestParameters={"marker": "x" * 3000})
    assert fired(run(analyzer, big)) == "100601"


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        (_rule("    <options>no_full_log,loud</options>"), 6, "unknown option 'loud'"),
        (_rule("    <same_source_ip />"), 6, "<same_source_ip> in rule 100600 tests one of"),
        (_rule("    <srcip>203.0.113.5</srcip>"), 6, 'e.g. <field name="aws.sourceIPAddress">'),
        (_rule("    <check_if_ignored>yes</check_if_ignored>"), 6, "unsupported element"),
        (_rule("    <if_level>5</if_level>"), 6, "unsupported element <if_level>"),
        (_rule('    <info type="video">x</info>'), 6, "<info type='video'>"),
        (
            '  <rule id="80250" level="9" overwrite="perhaps">\n    <if_sid>80203</if_sid>\n'
            "    <description>x</description>\n  </rule>",
            2,
            "overwrite='perhaps': use yes or no",
        ),
        (
            '  <rule id="100602" level="3" maxsize="0">\n    <if_sid>80202</if_sid>\n'
            "    <description>x</description>\n  </rule>",
            2,
            "maxsize=0 out of range 1..9999",
        ),
    ],
)
def test_options_we_cannot_honour_are_refused_with_file_and_line(
    tmp_path: Path, body: str, line: int, reason: str
) -> None:
    text = _refusal(tmp_path, body)
    assert f"{tmp_path / 'local_rules.xml'}:{line}:" in text, text
    assert reason in text, text


def test_a_catastrophic_pattern_is_stopped_and_reported_with_file_and_line(tmp_path: Path) -> None:
    analyzer = _analyzer(
        tmp_path,
        r"""  <rule id="100603" level="9">
    <if_sid>80202</if_sid>
    <field name="aws.requestParameters.name" type="pcre2">^((a|aa)\2?)+$</field>
    <description>catastrophic</description>
  </rule>
  <rule id="100604" level="8">
    <if_sid>80202</if_sid>
    <field name="aws.requestParameters.name" type="pcre2">(?&lt;!x)^a+$</field>
    <description>look-behind, fine</description>
  </rule>""",
    )
    started = time.monotonic()
    outcome = run(analyzer, record(eventName="GetRole", requestParameters={"name": "a" * 40 + "b"}))
    assert time.monotonic() - started < 5
    assert fired(outcome) == "80202"
    (error,) = outcome.rule_errors
    assert error.startswith(f"rule 100603 ({tmp_path / 'local_rules.xml'}:2): ")
    assert analyzer.stats()["match_limit_errors"] == 1
    fine = run(analyzer, record(eventName="GetRole", requestParameters={"name": "aaaa"}))
    assert fired(fine) == "100603" and not fine.rule_errors  # an easy subject still decides
    other = run(analyzer, record(eventName="GetRole", requestParameters={"name": "aab"}))
    assert fired(other) == "80202" and not other.rule_errors
