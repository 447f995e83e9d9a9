"""Rule options and attributes: overwrite, noalert / no_log, and a crafted event against a
pathological rule through the whole Analyzer."""

from __future__ import annotations

import time
from pathlib import Path

from tests.manager.analysis.helpers import fired, record, run
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "local_rules.xml"
    path.write_text(f'<group name="local,">\n{body}\n</group>\n')
    return path


def test_overwrite_replaces_a_default_rule_in_place(tmp_path: Path) -> None:
    local = _write(
        tmp_path,
        """
  <rule id="80250" level="9" overwrite="yes">
    <if_sid>80203</if_sid>
    <field name="aws.errorCode">AccessDenied</field>
    <description>Denied: $(aws.eventName) by $(aws.userIdentity.arn)</description>
  </rule>""",
    )
    analyzer = Analyzer(load_ruleset([*default_ruleset_paths(), local]), "m")
    outcome = run(analyzer, record(eventName="CreateUser", errorCode="AccessDenied"))
    assert outcome.alert is not None
    assert (outcome.alert.rule.id, outcome.alert.rule.level) == ("80250", 9)
    assert outcome.alert.rule.description.startswith("Denied: CreateUser by arn:aws:iam::")


def test_noalert_and_no_log_match_without_alerting(tmp_path: Path) -> None:
    local = _write(
        tmp_path,
        """
  <rule id="100200" level="5" noalert="1">
    <if_sid>80202</if_sid>
    <field name="aws.eventName">^GetCallerIdentity$</field>
    <description>quiet</description>
  </rule>
  <rule id="100201" level="5">
    <if_sid>80202</if_sid>
    <field name="aws.eventName">^ListBuckets$</field>
    <description>not logged</description>
    <options>no_log</options>
  </rule>""",
    )
    analyzer = Analyzer(load_ruleset([*default_ruleset_paths(), local]), "m")
    for name, rule_id in (("GetCallerIdentity", "100200"), ("ListBuckets", "100201")):
        outcome = run(analyzer, record(eventName=name))
        assert outcome.rule is not None and outcome.rule.id == rule_id
        assert outcome.alert is None
    assert fired(run(analyzer, record(eventName="GetUser"))) == "80202"


def test_pathological_rule_and_crafted_event_complete_quickly(tmp_path: Path) -> None:
    local = _write(
        tmp_path,
        r"""
  <rule id="100300" level="8">
    <if_sid>80202</if_sid>
    <field name="aws.requestParameters.name" type="pcre2">^(a+)+$</field>
    <description>nested quantifier</description>
  </rule>
  <rule id="100301" level="8">
    <if_sid>80202</if_sid>
    <regex>(\w+\w+)+\d$</regex>
    <description>osregex over the whole record</description>
  </rule>""",
    )
    analyzer = Analyzer(load_ruleset([*default_ruleset_paths(), local]), "m")
    crafted = record(
        eventName="CreateUser",
        requestParameters={"name": "a" * 200_000 + "!"},
        userAgent="x" * 200_000 + "!",
    )
    started = time.perf_counter()
    outcome = run(analyzer, crafted)
    elapsed = time.perf_counter() - started
    assert fired(outcome) == "80202"
    assert elapsed < 0.5


def test_siblings_are_tried_by_level_then_file_order(tmp_path: Path) -> None:
    local = _write(
        tmp_path,
        """
  <rule id="1" level="0">
    <decoded_as>json</decoded_as>
    <description>base</description>
  </rule>
  <rule id="2" level="3">
    <if_sid>1</if_sid>
    <field name="aws.eventName">Create</field>
    <description>first in the file, lower level</description>
  </rule>
  <rule id="3" level="7">
    <if_sid>1</if_sid>
    <field name="aws.eventName">User</field>
    <description>higher level</description>
  </rule>
  <rule id="4" level="7">
    <if_sid>1</if_sid>
    <field name="aws.eventName">^CreateUser$</field>
    <description>same level, later in the file</description>
  </rule>""",
    )
    analyzer = Analyzer(load_ruleset([local]), "m")
    assert fired(run(analyzer, record(eventName="CreateUser"))) == "3"
    assert fired(run(analyzer, record(eventName="CreateRole"))) == "2"
    assert fired(run(analyzer, record(eventName="ListUsers"))) == "3"


def test_if_sid_with_several_parents(tmp_path: Path) -> None:
    local = _write(
        tmp_path,
        """
  <rule id="100400" level="6">
    <if_sid>80203, 80253</if_sid>
    <field name="aws.sourceIPAddress">^203.0.113.</field>
    <description>from the lab network: $(aws.eventName)</description>
  </rule>""",
    )
    analyzer = Analyzer(load_ruleset([*default_ruleset_paths(), local]), "m")
    login = record(
        eventName="ConsoleLogin",
        eventSource="signin.amazonaws.com",
        sourceIPAddress="203.0.113.5",
        responseElements={"ConsoleLogin": "Success"},
    )
    refused = record(
        eventName="RunInstances",
        errorCode="Client.UnauthorizedOperation",
        sourceIPAddress="203.0.113.5",
    )
    assert fired(run(analyzer, login)) == "100400"
    assert fired(run(analyzer, refused)) == "100400"
    assert fired(run(analyzer, record(sourceIPAddress="203.0.113.5"))) == "80202"
    for parent in ("80203", "80253"):
        assert "100400" in [r.id for r in analyzer.ruleset.rules[parent].children]
