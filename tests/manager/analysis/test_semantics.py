"""Wazuh rule semantics on a small ruleset (tests/files/rules/semantics.xml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.manager.analysis.helpers import fired, record, run
from trailwarden.common.model import AgentRef
from trailwarden.manager.analysis.pipeline import Analyzer

T0 = datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure(seconds: float, ip: str = "203.0.113.9") -> dict[str, object]:
    return record(
        eventSource="signin.amazonaws.com",
        eventName="ConsoleLogin",
        eventTime=at(seconds),
        sourceIPAddress=ip,
        responseElements={"ConsoleLogin": "Failure"},
    )


# -- tree ---------------------------------------------------------------------------------------


def test_deepest_match_wins(semantics: Analyzer) -> None:
    rec = record(
        eventSource="iam.amazonaws.com",
        eventName="CreateUser",
        requestParameters={"userName": "admin-backup"},
    )
    outcome = run(semantics, rec, trace=True)
    assert fired(outcome) == "100004"
    assert outcome.alert is not None
    assert outcome.alert.rule.description == "admin-looking user admin-backup"
    matched = [s.rule_id for s in outcome.trace if s.matched]
    assert matched == ["100000", "100001", "100002", "100003", "100004"]


def test_a_child_that_does_not_match_leaves_the_parent(semantics: Analyzer) -> None:
    rec = record(
        eventSource="iam.amazonaws.com",
        eventName="CreateUser",
        requestParameters={"userName": "Admin-backup"},
    )  # pcre2 is case-sensitive
    outcome = run(semantics, rec)
    assert fired(outcome) == "100003"
    assert outcome.alert is not None
    assert outcome.alert.rule.mitre_ids == ("T1136.003",)
    assert (
        fired(run(semantics, record(eventSource="iam.amazonaws.com", eventName="ListUsers")))
        == "100002"
    )


def test_level_zero_never_alerts_even_below_an_alerting_parent(semantics: Analyzer) -> None:
    outcome = run(semantics, record(eventName="DescribeInstances"))
    assert outcome.rule is not None and outcome.rule.id == "100005"
    assert outcome.alert is None
    assert semantics.stats()["alerts"] == 0


def test_description_expands_fields_and_blanks_missing_ones(semantics: Analyzer) -> None:
    outcome = run(semantics, record(eventName="ListBuckets"))
    assert outcome.alert is not None
    assert outcome.alert.rule.description == "any: ListBuckets by carol end"
    assert outcome.alert.rule.groups == ("test", "ct")


def test_negate_osmatch_and_var(semantics: Analyzer) -> None:
    assert fired(run(semantics, record(eventName="StopLogging"))) == "100006"
    root = record(eventName="StopLogging", userIdentity={"type": "Root", "arn": "a:root"})
    assert fired(run(semantics, root)) == "100001"
    # A negated test on a missing field fails, as in Wazuh.
    anonymous = record(eventName="DeleteTrail", userIdentity={"arn": "x"})
    assert fired(run(semantics, anonymous)) == "100001"


# -- lists --------------------------------------------------------------------------------------


def test_list_match_key_with_quoted_keys(semantics: Analyzer) -> None:
    assert fired(run(semantics, record(eventName="X", sourceIPAddress="203.0.113.66"))) == "100010"
    assert fired(run(semantics, record(eventName="X", sourceIPAddress="198.51.100.99"))) == "100010"
    assert fired(run(semantics, record(eventName="X", sourceIPAddress="198.51.100.1"))) == "100001"


def test_list_match_key_value_checks_the_value(semantics: Analyzer) -> None:
    rec = record(eventName="X")
    rec["userIdentity"]["userName"] = "alice"
    assert fired(run(semantics, rec)) == "100011"
    rec["userIdentity"]["userName"] = "bob"  # developer, not admin
    assert fired(run(semantics, rec)) == "100001"


def test_list_not_match_key(semantics: Analyzer) -> None:
    rec = record(eventName="GetObject")
    rec["userIdentity"]["userName"] = "mallory"
    assert fired(run(semantics, rec)) == "100012"
    rec["userIdentity"]["userName"] = "bob"
    assert fired(run(semantics, rec)) == "100001"


# -- match / regex over the raw record -----------------------------------------------------------


def test_match_and_regex_see_the_raw_record(semantics: Analyzer) -> None:
    policy = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}
    rec = record(eventName="PutBucketPolicy", requestParameters={"bucketPolicy": policy})
    assert fired(run(semantics, rec)) == "100050"
    big = record(eventName="RunInstances", requestParameters={"instanceType": "m5.24xlarge"})
    assert fired(run(semantics, big)) == "100051"
    small = record(eventName="RunInstances", requestParameters={"instanceType": "t3.micro"})
    assert fired(run(semantics, small)) == "100001"


# -- frequency / timeframe ------------------------------------------------------------------------


def test_frequency_fires_on_exactly_the_nth_event(semantics: Analyzer) -> None:
    results = [fired(run(semantics, failure(t))) for t in (0, 30, 60, 90, 100)]
    assert results == ["100020", "100020", "100020", "100021", "100020"]
    outcome = run(semantics, failure(101))
    assert fired(outcome) == "100020"


def test_frequency_counts_again_after_firing(semantics: Analyzer) -> None:
    results = [fired(run(semantics, failure(t))) for t in range(0, 80, 10)]
    assert results == ["100020"] * 3 + ["100021"] + ["100020"] * 3 + ["100021"]
    assert semantics.stats()["fired"]["100021"] == 2


def test_window_edge_is_inclusive_and_older_events_drop_out(semantics: Analyzer) -> None:
    # 4th event exactly 120 s after the first: still inside the timeframe.
    assert [fired(run(semantics, failure(t))) for t in (0, 40, 80, 120)][-1] == "100021"
    other = Analyzer(semantics.ruleset, "m")
    # 4th event 121 s after the first: the first dropped out, only 3 in the window.
    assert [fired(run(other, failure(t))) for t in (0, 40, 80, 121)][-1] == "100020"
    # ... and the next one, within 120 s of the 2nd, completes 4 again.
    assert fired(run(other, failure(150))) == "100021"


def test_frequency_follows_event_time_not_arrival(semantics: Analyzer) -> None:
    # Four failures spread over an hour of event time, replayed in one burst: no alert.
    assert [fired(run(semantics, failure(t))) for t in (0, 1200, 2400, 3600)] == ["100020"] * 4


def test_same_field_separates_sources(semantics: Analyzer) -> None:
    ips = ["203.0.113.1", "203.0.113.2"] * 3 + ["203.0.113.1", "203.0.113.2"]
    results = [fired(run(semantics, failure(i, ip))) for i, ip in enumerate(ips)]
    assert results == ["100020"] * 6 + ["100021", "100021"]


def test_correlation_is_per_agent(semantics: Analyzer) -> None:
    agents = [AgentRef("001", "a"), AgentRef("002", "b")]
    results = [fired(run(semantics, failure(i), agent=agents[i % 2])) for i in range(6)]
    assert "100021" not in results
    assert fired(run(semantics, failure(7), agent=agents[0])) == "100021"


def test_different_field_and_if_matched_group(semantics: Analyzer) -> None:
    def assume(t: float, role: str) -> dict[str, object]:
        return record(
            eventSource="sts.amazonaws.com",
            eventName="AssumeRole",
            eventTime=at(t),
            requestParameters={"roleArn": role},
        )

    same = [fired(run(semantics, assume(t, "arn:aws:iam::1:role/a"))) for t in range(5)]
    assert same == ["100030"] * 5  # the same role again and again is not "different"
    other = Analyzer(semantics.ruleset, "m")
    roles = ["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b", "arn:aws:iam::1:role/c"]
    assert [fired(run(other, assume(t, r))) for t, r in enumerate(roles)] == [
        "100030",
        "100030",
        "100031",
    ]


def test_if_group_and_ignore(semantics: Analyzer) -> None:
    def put(t: float, key: str) -> dict[str, object]:
        return record(
            eventSource="s3.amazonaws.com",
            eventName="PutObject",
            eventTime=at(t),
            requestParameters={"bucketName": "b", "key": key},
        )

    assert fired(run(semantics, put(0, "tool.exe"))) == "100041"
    assert fired(run(semantics, put(30, "tool2.exe"))) == "100040"  # ignored for 60 s
    assert fired(run(semantics, put(61, "tool3.exe"))) == "100041"
    assert fired(run(semantics, put(62, "notes.txt"))) == "100040"
