"""The Analyzer: alert fields, counters, decode errors, ruleset replacement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.manager.analysis.helpers import AGENT, RULES, SOURCE, event_file, fired, record, run
from trailwarden.common.errors import DecodeError
from trailwarden.manager.analysis.pipeline import Analyzer, principal_name
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths, load_ruleset


def test_alert_carries_every_indexed_field(analyzer: Analyzer) -> None:
    ((rec, raw),) = event_file("iam-create-user-access-denied.json")
    outcome = analyzer.analyse(rec, raw, SOURCE, AGENT)
    alert = outcome.alert
    assert alert is not None
    assert alert.event_id == rec["eventID"]
    assert alert.recipient_account == "123456789012"
    assert alert.event_time == rec["eventTime"]
    assert alert.account == "123456789012"
    assert alert.region == "us-east-1"
    assert alert.event_source == "iam.amazonaws.com"
    assert alert.event_name == "CreateUser"
    assert alert.user == "Bob"
    assert alert.source_ip == "198.51.100.23"
    assert alert.location == SOURCE.location
    assert alert.agent == AGENT
    assert alert.manager_name == "manager-test"
    assert alert.data is outcome.event
    assert alert.full_log == ""  # no_full_log, as Wazuh's AWS rules
    seconds, number = alert.id.split(".")
    assert seconds.isdigit() and int(number) == os.getpid() * 1_000_000_000 + 1
    assert alert.timestamp.endswith("Z")
    wazuh = alert.to_wazuh()
    assert wazuh["rule"]["id"] == "80250"
    assert wazuh["data"]["aws"]["errorCode"] == "AccessDenied"
    # Wazuh writes "Wazuh-AWS" as every AWS alert's location; the object is in log_info.
    assert wazuh["location"] == "Wazuh-AWS"
    assert wazuh["data"]["aws"]["log_info"]["log_file"] == SOURCE.key


def test_principal_name_fallbacks() -> None:
    assert principal_name({"userName": "bob", "arn": "arn:aws:iam::1:user/x"}) == "bob"
    assert principal_name({"arn": "arn:aws:sts::1:assumed-role/Admin/session-1"}) == "session-1"
    assert principal_name({"arn": "arn:aws:iam::123456789012:root"}) == "root"
    assert principal_name({"principalId": "AIDAEXAMPLE"}) == "AIDAEXAMPLE"
    assert principal_name({}) == ""


def test_full_log_is_kept_when_the_rule_asks(tmp_path: Path) -> None:
    rules = tmp_path / "r.xml"
    rules.write_text(
        '<group name="g,"><rule id="1" level="3"><decoded_as>json</decoded_as>'
        "<description>all</description></rule></group>"
    )
    analyzer = Analyzer(load_ruleset([rules]), "m")
    rec = record()
    outcome = run(analyzer, rec)
    assert outcome.alert is not None
    assert outcome.alert.full_log.startswith('{"eventVersion":"1.09"')


def test_stats_count_records_alerts_errors_and_rules(analyzer: Analyzer) -> None:
    run(analyzer, record())
    run(analyzer, record(eventName="StopLogging", eventSource="cloudtrail.amazonaws.com"))
    with pytest.raises(DecodeError, match="not a JSON object"):
        analyzer.analyse([1, 2], b"[1,2]", SOURCE, AGENT)  # type: ignore[arg-type]
    stats = analyzer.stats()
    assert stats["records"] == 3
    assert stats["alerts"] == 2
    assert stats["decode_errors"] == 1
    assert stats["fired"] == {"80202": 1, "80500": 1}


def test_firedtimes_counts_per_rule(analyzer: Analyzer) -> None:
    first = run(analyzer, record())
    second = run(analyzer, record())
    assert first.alert is not None and second.alert is not None
    assert (first.alert.rule.firedtimes, second.alert.rule.firedtimes) == (1, 2)


def test_replace_ruleset_keeps_unchanged_correlation_windows(default_ruleset: Ruleset) -> None:
    analyzer = Analyzer(default_ruleset, "m")
    burst = event_file("signin-console-login-failures-burst.json")
    for rec, raw in burst[:4]:
        assert fired(analyzer.analyse(rec, raw, SOURCE, AGENT)) == "80254"
    # Reload (same rules plus a user file): 80255's window survives the reload.
    extended = load_ruleset([*default_ruleset_paths(), RULES / "wazuh-style.xml"], lists_root=RULES)
    analyzer.replace_ruleset(extended)
    assert analyzer.ruleset is extended
    rec, raw = burst[4]
    assert fired(analyzer.analyse(rec, raw, SOURCE, AGENT)) == "80255"
    assert fired(run(analyzer, record(eventName="StopLogging"))) == "100100"


def test_logtest_trace_lists_the_rules_tried(analyzer: Analyzer) -> None:
    ((rec, raw),) = event_file("signin-console-login-failure.json")
    outcome = analyzer.analyse(rec, raw, SOURCE, AGENT, trace=True)
    tried = [(s.rule_id, s.depth, s.matched) for s in outcome.trace]
    # Wazuh's sibling order: higher level first, then file order.
    assert tried == [
        ("80200", 0, True),
        ("80202", 1, True),
        # 80502 (root use, 10) names no API and is filed by userIdentity.type: an IAM user's
        # login never meets it.
        ("80203", 2, False),  # error code (4)
        ("80253", 2, True),  # console login (3)
        # 80253's children are indexed by responseElements.ConsoleLogin, which all three test:
        # a failed login never meets the rules of successful ones (80504, 80503).
        ("80254", 3, True),  # failure (5)
        ("80255", 4, False),  # 1 of 5
    ]
    assert outcome.trace[-1].note == "1 of 5 in 360s"
    assert outcome.rule is not None and outcome.rule.id == "80254"
