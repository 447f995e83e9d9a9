"""Wazuh's own Amazon ruleset (0350-amazon_rules.xml, committed unchanged with its licence)
loads as it is and raises, on real CloudTrail events, the alerts Wazuh documents."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from tests.fixtures.committed_datasets import dataset_objects
from tests.manager.analysis.helpers import AGENT, FILES, record, run
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset, load_ruleset
from trailwarden.manager.analysis.rules.matcher import EventView, RuleTree
from trailwarden.manager.analysis.rules.model import Rule

WAZUH = FILES / "wazuh"
AMAZON_RULES = WAZUH / "rules" / "0350-amazon_rules.xml"


def _wazuh_ruleset() -> Ruleset:
    # The lists root is the folder holding etc/lists/..., as /var/ossec is on a Wazuh manager.
    return load_ruleset([AMAZON_RULES], WAZUH)


def test_the_file_is_wazuhs_unchanged() -> None:
    text = AMAZON_RULES.read_bytes()
    assert len(text) == 23_255
    assert text.startswith(b"<!--\n  -  Copyright (C) 2015, Wazuh Inc.\n-->")
    assert b'<field name="aws.error_code" type="pcre2">^(?!^$|^-$).*</field>' in text
    assert (WAZUH / "LICENSE").is_file() and (WAZUH / "SOURCE.md").is_file()
    assert hashlib.sha256(text).hexdigest() in (WAZUH / "SOURCE.md").read_text()


def test_wazuhs_amazon_ruleset_loads_unchanged() -> None:
    ruleset = _wazuh_ruleset()
    assert len(ruleset) == 67
    look_ahead = ruleset.rules["80367"]
    (test,) = look_ahead.fields
    assert test.pattern.backtracking  # RE2 cannot run (?!...): the limited engine does
    assert {r.id for r in look_ahead.children} == {"80368", "80370"}
    assert ruleset.rules["80369"].same_fields == ("aws.error_code",)
    assert "no_full_log" in ruleset.rules["80202"].options


def _s3_access(error_code: str) -> dict[str, object]:
    # An S3 server-access event as Wazuh's wodle emits it (aws.source s3_server_access).
    return {"source": "s3_server_access", "operation": "REST.GET.OBJECT", "error_code": error_code}


def test_the_look_ahead_rule_and_its_children_fire() -> None:
    tree = RuleTree(_wazuh_ruleset())

    def deepest(error_code: str) -> Rule | None:
        event = {"integration": "aws", "aws": _s3_access(error_code)}
        view = EventView(event, json.dumps(event).encode())
        # No correlation here: a frequency rule (80369) is never reached by one event.
        rule, _ = tree.walk(view, lambda rule, view: (not rule.is_correlation, ""))
        assert not view.rule_errors
        return rule

    assert _id(deepest("AccessDenied")) == "80368"
    assert _id(deepest("InvalidSecurity")) == "80370"
    assert _id(deepest("NoSuchKey")) == "80367"
    assert _id(deepest("-")) == "80362"  # "-" is Wazuh's "no error": the look-ahead refuses it


def _id(rule: Rule | None) -> str:
    return rule.id if rule is not None else "none"


def test_real_cloudtrail_events_through_wazuhs_ruleset() -> None:
    analyzer = Analyzer(_wazuh_ruleset(), "manager-test")
    fired: Counter[str] = Counter()
    records = 0
    for obj in dataset_objects("invictus", "stratus"):
        for parsed in obj.records:
            records += 1
            outcome = analyzer.analyse(parsed.record, parsed.raw, obj.source, AGENT)
            assert not outcome.rule_errors
            if outcome.alert is not None:
                fired[outcome.alert.rule.id] += 1
                assert outcome.alert.full_log == ""  # no_full_log honoured
    assert records == 3_210
    # Only CloudTrail rules can fire on CloudTrail; every event named in Wazuh's list alerts.
    assert set(fired) <= {"80202", "80203", "80250", "80251", "80252", "80253", "80254", "80255"}
    # Counted once by hand from the datasets: 356 events have an eventName in Wazuh's list, 23
    # of them with an errorCode (none AccessDenied), 3 are console logins.
    assert fired == {"80202": 330, "80203": 23, "80253": 3}, fired


def test_console_login_failures_reach_wazuhs_brute_force_rule() -> None:
    analyzer = Analyzer(_wazuh_ruleset(), "manager-test")
    ids = []
    for n in range(6):
        failed = record(
            eventSource="signin.amazonaws.com",
            eventName="ConsoleLogin",
            eventTime=f"2026-11-20T09:0{n}:00Z",
            eventID=f"login-{n}",
            responseElements={"ConsoleLogin": "Failure"},
        )
        outcome = run(analyzer, failed)
        assert outcome.alert is not None
        ids.append(outcome.alert.rule.id)
    assert ids == ["80254"] * 5 + ["80255"]


def test_its_path_is_given_as_is(tmp_path: Path) -> None:
    # The same file copied anywhere loads the same (nothing depends on our folder layout but
    # the lists root).
    copy = tmp_path / "0350-amazon_rules.xml"
    copy.write_bytes(AMAZON_RULES.read_bytes())
    assert len(load_ruleset([copy], WAZUH)) == 67


def test_the_mitre_ids_of_wazuhs_ruleset_have_their_names() -> None:
    # (An ID missing from the table keeps its rule.mitre.id and only lacks the names; the
    # shipped ruleset's IDs are listed in the table too, and new rules should add theirs.)
    from trailwarden.manager.analysis.mitre import TECHNIQUES, mitre_document

    ids = {i for rule in _wazuh_ruleset().rules.values() for i in rule.mitre_ids}
    assert ids == {"T1485", "T1078", "T1110"}
    assert ids <= set(TECHNIQUES)
    assert mitre_document(["T1110", "T9999"]) == {
        "id": ["T1110", "T9999"],
        "technique": ["Brute Force"],
        "tactic": ["Credential Access"],
    }
