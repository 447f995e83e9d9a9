"""Sigma correlation rules on event-time windows: event_count, value_count, temporal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.manager.analysis.helpers import AGENT, SOURCE, record, run
from tests.manager.analysis.sigma.helpers import sigma_rule, write_rules
from trailwarden.common.errors import RulesetError
from trailwarden.common.model import AgentRef
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.ruleset import load_rules

FAILED_LOGIN = sigma_rule(
    {
        "sel": {"eventName": "ConsoleLogin", "errorMessage": "Failed authentication"},
        "condition": "sel",
    },
    rule_id="11111111-0000-0000-0000-000000000001",
    name="failed_login",
)
SUCCESS_LOGIN = sigma_rule(
    {
        "sel": {"eventName": "ConsoleLogin", "responseElements.ConsoleLogin": "Success"},
        "condition": "sel",
    },
    rule_id="11111111-0000-0000-0000-000000000002",
    name="success_login",
)


def correlation(
    kind: str, rules: list[str], condition: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "rules": rules, "timespan": "5m", **extra}
    if condition is not None:
        body["condition"] = condition
    return {
        "title": f"{kind} correlation",
        "id": "22222222-0000-0000-0000-00000000000" + str(len(kind) % 10),
        "status": "test",
        "correlation": body,
        "level": "high",
        "tags": ["attack.credential-access", "attack.t1110"],
    }


def failed(at: str, user: str = "carol", ip: str = "198.51.100.7") -> dict[str, Any]:
    return record(
        eventName="ConsoleLogin",
        errorMessage="Failed authentication",
        eventTime=at,
        userIdentity__userName=user,
        sourceIPAddress=ip,
    )


def analyzer(tmp_path: Path, *docs: dict[str, Any]) -> Analyzer:
    return Analyzer(load_rules([write_rules(tmp_path, *docs)]), "manager-test")


def correlation_alerts(
    analyzer: Analyzer, rec: dict[str, Any], agent: AgentRef = AGENT
) -> list[str]:
    outcome = analyzer.analyse(rec, b"{}", SOURCE, agent)
    return [a.rule.id for a in outcome.sigma_alerts if a.rule.id.startswith("2222")]


def test_event_count_fires_on_the_nth_event_within_timespan_grouped_by(tmp_path: Path) -> None:
    rule = correlation(
        "event_count", ["failed_login"], {"gte": 3}, **{"group-by": ["userIdentity.userName"]}
    )
    engine = analyzer(tmp_path, FAILED_LOGIN, rule)
    assert correlation_alerts(engine, failed("2026-11-20T09:00:00Z")) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:01:00Z", user="dave")) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:02:00Z")) == []
    fired = run(engine, failed("2026-11-20T09:03:00Z"))
    (alert,) = [a for a in fired.sigma_alerts if a.rule.id.startswith("2222")]
    assert alert.rule.level == 12 and alert.rule.frequency == 3
    assert alert.rule.mitre_ids == ("T1110",)
    assert alert.rule.mitre_tactics == ("Credential Access",)
    # The window was used up: the next one needs three fresh events.
    assert correlation_alerts(engine, failed("2026-11-20T09:03:30Z")) == []


def test_event_count_follows_event_time_not_arrival(tmp_path: Path) -> None:
    rule = correlation("event_count", ["failed_login"], {"gte": 3})
    engine = analyzer(tmp_path, FAILED_LOGIN, rule)
    # Three events an hour apart (a backfill replays them back to back): no burst.
    for hour in ("07", "08", "09"):
        assert correlation_alerts(engine, failed(f"2026-11-20T{hour}:00:00Z")) == []


def test_event_count_is_per_agent(tmp_path: Path) -> None:
    rule = correlation("event_count", ["failed_login"], {"gte": 2})
    engine = analyzer(tmp_path, FAILED_LOGIN, rule)
    assert correlation_alerts(engine, failed("2026-11-20T09:00:00Z")) == []
    other = AgentRef("002", "aws-dev")
    assert correlation_alerts(engine, failed("2026-11-20T09:00:10Z"), other) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:00:20Z")) == [
        "22222222-0000-0000-0000-000000000001"
    ]


def test_value_count_counts_distinct_values(tmp_path: Path) -> None:
    rule = correlation(
        "value_count",
        ["failed_login"],
        {"gte": 3, "field": "sourceIPAddress"},
        **{"group-by": ["userIdentity.userName"]},
    )
    engine = analyzer(tmp_path, FAILED_LOGIN, rule)
    assert correlation_alerts(engine, failed("2026-11-20T09:00:00Z", ip="192.0.2.1")) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:00:10Z", ip="192.0.2.1")) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:00:20Z", ip="192.0.2.2")) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:00:30Z", ip="192.0.2.3")) != []


def test_temporal_needs_every_referenced_rule_in_the_window(tmp_path: Path) -> None:
    rule = correlation(
        "temporal",
        ["failed_login", "success_login"],
        None,
        **{"group-by": ["userIdentity.userName"]},
    )
    engine = analyzer(tmp_path, FAILED_LOGIN, SUCCESS_LOGIN, rule)
    success = record(
        eventName="ConsoleLogin",
        responseElements={"ConsoleLogin": "Success"},
        eventTime="2026-11-20T09:02:00Z",
    )
    assert correlation_alerts(engine, failed("2026-11-20T09:00:00Z")) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:01:00Z")) == []
    assert correlation_alerts(engine, success) != []


def test_referenced_rules_do_not_alert_unless_generate(tmp_path: Path) -> None:
    quiet = analyzer(
        tmp_path, FAILED_LOGIN, correlation("event_count", ["failed_login"], {"gte": 5})
    )
    assert run(quiet, failed("2026-11-20T09:00:00Z")).sigma_alerts == []
    loud_dir = tmp_path / "loud"
    loud_dir.mkdir()
    loud = analyzer(
        loud_dir,
        FAILED_LOGIN,
        correlation("event_count", ["failed_login"], {"gte": 5}, generate=True),
    )
    (alert,) = run(loud, failed("2026-11-20T09:00:00Z")).sigma_alerts
    assert alert.rule.id == "11111111-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("kind", "condition", "reason"),
    [
        ("event_count", {"lt": 3}, "can only be decided when a window closes"),
        ("event_count", {"eq": 3}, "can only be decided when a window closes"),
        ("value_sum", {"gte": 3, "field": "x"}, "not supported"),
        ("temporal_ordered", None, "not supported"),
    ],
)
def test_correlations_we_cannot_stream_are_refused_with_file_and_id(
    tmp_path: Path, kind: str, condition: dict[str, Any] | None, reason: str
) -> None:
    path = write_rules(
        tmp_path,
        FAILED_LOGIN,
        SUCCESS_LOGIN,
        correlation(kind, ["failed_login", "success_login"], condition),
    )
    with pytest.raises(RulesetError) as refused:
        load_rules([path])
    (error,) = refused.value.errors
    assert error.file == str(path) and error.line > 0
    assert reason in error.reason and "22222222-" in error.reason


def test_a_window_of_an_unchanged_correlation_survives_a_reload(tmp_path: Path) -> None:
    docs = (FAILED_LOGIN, correlation("event_count", ["failed_login"], {"gte": 3}))
    engine = analyzer(tmp_path, *docs)
    assert correlation_alerts(engine, failed("2026-11-20T09:00:00Z")) == []
    assert correlation_alerts(engine, failed("2026-11-20T09:00:10Z")) == []
    again = tmp_path / "again"
    again.mkdir()
    engine.replace_ruleset(load_rules([write_rules(again, *docs)]))
    assert correlation_alerts(engine, failed("2026-11-20T09:00:20Z")) != []
