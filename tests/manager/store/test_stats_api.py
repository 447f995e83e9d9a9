"""`admin alerts` / `admin stats` with the new filters, event vs arrival time, top-N and series,
end to end: the CLI in-process against a real in-process manager over mutual TLS."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from tests.fixtures.system import RunningManager
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.client import admin_stub
from trailwarden.manager.analysis.alert import Alert

from .factory import make_alert
from .test_alerts_api import cli, commit

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def estate(running_manager: RunningManager) -> tuple[RunningManager, list[Alert]]:
    def at(minutes: float) -> datetime:
        return NOW - timedelta(minutes=minutes)

    alerts = [
        make_alert(when=at(50), event_source="iam.amazonaws.com", event_name="CreateUser"),
        make_alert(when=at(45), event_source="iam.amazonaws.com", event_name="CreateUser"),
        make_alert(
            when=at(40),
            event_source="iam.amazonaws.com",
            event_name="AttachUserPolicy",
            rule_id="80255",
            level=8,
            mitre_ids=("T1098",),
            source_ip="203.0.113.9",
        ),
        make_alert(
            when=at(35),
            event_source="ec2.amazonaws.com",
            event_name="RunInstances",
            error_code="UnauthorizedOperation",
            bucket="trail-b",
        ),
        # Backfilled: arrived a minute ago, happened three days ago.
        make_alert(
            when=at(1),
            event_time=(NOW - timedelta(days=3)).isoformat().replace("+00:00", "Z"),
            rule_id="80203",
            user="mallory",
        ),
    ]
    commit(running_manager, alerts)
    return running_manager, alerts


def _json(capsys: Any) -> Any:
    return json.loads(capsys.readouterr().out)


def test_new_filters_and_time_basis_through_the_cli(
    estate: tuple[RunningManager, list[Alert]], capsys: Any
) -> None:
    manager, alerts = estate
    assert cli(manager, "alerts", "--since", "24h", "--json") == 0
    assert [a["id"] for a in _json(capsys)] == [a.id for a in reversed(alerts[:4])]
    assert cli(manager, "alerts", "--since", "24h", "--arrival", "--json") == 0
    assert _json(capsys)[0]["id"] == alerts[4].id  # newest arrival first
    assert cli(manager, "alerts", "--from", (NOW - timedelta(days=4)).isoformat(), "--to",
               (NOW - timedelta(days=2)).isoformat(), "--json") == 0  # fmt: skip
    assert [a["user"] for a in _json(capsys)] == ["mallory"]
    for flags, expected in (
        (("--event-source", "iam.amazonaws.com"), [2, 1, 0]),
        (("--mitre", "T1098"), [2]),
        (("--source-ip", "203.0.113.9", "--level", "8"), [2]),
        (("--error-code", "UnauthorizedOperation"), [3]),
        (("--bucket", "trail-b"), [3]),
        (("--source", "cloudtrail", "--group", "aws_cloudtrail", "--since", "2h"), [3, 2, 1, 0]),
    ):
        assert cli(manager, "alerts", *flags, "--json") == 0, flags
        got = _json(capsys)
        assert [a["id"] for a in got] == [alerts[i].id for i in expected], flags
    assert got[0]["source"] == "cloudtrail" and got[0]["bucket"] == "trail-b"
    assert got[0]["error_code"] == "UnauthorizedOperation"


def test_stats_by_every_new_field_with_filters_and_top(
    estate: tuple[RunningManager, list[Alert]], capsys: Any
) -> None:
    manager, _ = estate
    assert cli(manager, "stats", "--since", "24h", "--by", "event-name",
               "--event-source", "iam.amazonaws.com", "--json") == 0  # fmt: skip
    stats = _json(capsys)
    assert stats["time_basis"] == "event" and stats["total"] == 3
    assert [(b["key"], b["count"]) for b in stats["buckets"]] == [
        ("CreateUser", 2),
        ("AttachUserPolicy", 1),
    ]
    assert cli(manager, "stats", "--since", "24h", "--by", "event-name", "--top", "1",
               "--json") == 0  # fmt: skip
    top = _json(capsys)
    assert len(top["buckets"]) == 1 and top["other"] == 4 - top["buckets"][0]["count"]
    for by, key in (
        ("source-ip", "198.51.100.7"),
        ("error-code", ""),
        ("bucket", "trail-bucket"),
        ("source", "cloudtrail"),
        ("event-source", "iam.amazonaws.com"),
        ("region", "us-east-1"),
        ("mitre", "T1098"),
        ("day", (NOW - timedelta(minutes=50)).strftime("%Y-%m-%d")),
    ):
        assert cli(manager, "stats", "--since", "24h", "--by", by, "--json") == 0, by
        stats = _json(capsys)
        assert stats["total"] == 4, by
        assert key in {b["key"] for b in stats["buckets"]}, by
    # Arrival basis: the backfilled alert arrived within the last day too.
    assert cli(manager, "stats", "--since", "24h", "--arrival", "--by", "user", "--json") == 0
    arrival = _json(capsys)
    assert arrival["time_basis"] == "arrival" and arrival["total"] == 5
    assert "mallory" in {b["key"] for b in arrival["buckets"]}


def test_series_through_the_cli_and_the_api(
    estate: tuple[RunningManager, list[Alert]], capsys: Any
) -> None:
    manager, _ = estate
    assert cli(manager, "stats", "--since", "2h", "--by", "hour", "--split", "rule",
               "--top", "1", "--json") == 0  # fmt: skip
    series = _json(capsys)
    assert series["interval_seconds"] == 3600 and series["total"] == 4
    assert len(series["starts"]) in (2, 3)
    assert [g["key"] for g in series["groups"]] == ["80202", "other"]
    assert [sum(g["counts"]) for g in series["groups"]] == [3, 1]
    assert all(len(g["counts"]) == len(series["starts"]) for g in series["groups"])
    assert cli(manager, "stats", "--since", "2h", "--interval", "15m") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["BUCKET", "START", "(UTC)", "count"]
    assert "total: 4 alert(s), interval 900s" in out
    args = argparse.Namespace(credentials=str(manager.home.credentials))
    with admin_stub(args) as stub:
        response = stub.Series(
            admin_pb2.SeriesRequest(
                filter=admin_pb2.AlertQuery(since="7d", event_source="iam.amazonaws.com"),
                split="mitre",
            ),
            timeout=10,
        )
        assert response.interval_seconds == 7200 and response.total == 3
        assert [(g.key, sum(g.counts)) for g in response.groups] == [("T1098", 1)]
        # The old StatsRequest fields still work, alone.
        old = stub.Stats(admin_pb2.StatsRequest(since="24h", by="rule"), timeout=10)
        assert old.total == 4 and old.by == "rule"


def test_bad_stats_and_series_requests_are_refused_with_the_field(
    running_manager: RunningManager, capsys: Any
) -> None:
    assert cli(running_manager, "stats", "--since", "1d", "--interval", "7m") == 2
    assert "bad --interval '7m'" in capsys.readouterr().err
    assert cli(running_manager, "stats", "--split", "rule") == 2
    assert "a series needs a time range" in capsys.readouterr().err
    assert cli(running_manager, "alerts", "--level", "20") == 2
    assert "bad --level 20" in capsys.readouterr().err
    args = argparse.Namespace(credentials=str(running_manager.home.credentials))
    with admin_stub(args) as stub:
        for call, request, message in (
            (
                stub.Series,
                admin_pb2.SeriesRequest(filter=admin_pb2.AlertQuery(since="1d"), split="colour"),
                "unknown field 'colour' for --split",
            ),
            (
                stub.Series,
                admin_pb2.SeriesRequest(filter=admin_pb2.AlertQuery(since="30d"), interval="1m"),
                "buckets over this range",
            ),
            (
                stub.Stats,
                admin_pb2.StatsRequest(since="1d", filter=admin_pb2.AlertQuery(since="2d")),
                "either in its own fields or in filter",
            ),
            (
                stub.QueryAlerts,
                admin_pb2.AlertQuery(time_basis="wallclock"),
                "unknown time basis 'wallclock'",
            ),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in caught.value.details()
