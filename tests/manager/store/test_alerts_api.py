"""Alerts through the Admin API and the CLI, against a real in-process manager over mutual TLS."""

from __future__ import annotations

import argparse
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from tests.fixtures.system import RunningManager
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin import alerts_cli
from trailwarden.manager.admin.client import admin_stub
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore

from .factory import event_for, make_alert


def now_minus(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def store_of(manager: RunningManager) -> SqliteAlertStore:
    store = manager.server.store
    assert isinstance(store, SqliteAlertStore)
    return store


def commit(manager: RunningManager, alerts: list[Alert]) -> None:
    assert store_of(manager).commit([event_for(a) for a in alerts], alerts) == len(alerts)


def cli(manager: RunningManager, *argv: str) -> int:
    """Run an alerts/stats command in-process, as `trailwarden admin ...` would."""
    return alerts_cli.main([*argv, "--credentials", str(manager.home.credentials)])


@pytest.fixture
def seeded(running_manager: RunningManager) -> tuple[RunningManager, list[Alert]]:
    alerts = [
        make_alert(when=now_minus(50), rule_id="80202", user="alice", level=3),
        make_alert(
            when=now_minus(40),
            rule_id="80203",
            user="bob",
            level=10,
            description="AWS CloudTrail: StopLogging",
            event_name="StopLogging",
        ),
        make_alert(when=now_minus(30), rule_id="80202", user="bob", level=3, region="eu-west-1"),
        make_alert(when=now_minus(60 * 30), rule_id="80250", user="carol", level=5),
    ]
    commit(running_manager, alerts)
    return running_manager, alerts


def test_alerts_json_with_filters(seeded: tuple[RunningManager, list[Alert]], capsys: Any) -> None:
    manager, alerts = seeded
    assert cli(manager, "alerts", "--since", "24h", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [a["id"] for a in listed] == [alerts[2].id, alerts[1].id, alerts[0].id]
    first = listed[0]
    assert set(first) == {
        "id",
        "timestamp",
        "event_time",
        "rule_id",
        "level",
        "description",
        "groups",
        "mitre_ids",
        "firedtimes",
        "agent_id",
        "agent_name",
        "account",
        "region",
        "event_source",
        "event_name",
        "user",
        "source_ip",
        "event_id",
        "source",
        "bucket",
        "error_code",
        "alert",
    }
    assert first["alert"] == alerts[2].to_wazuh()
    assert (first["region"], first["user"], first["agent_name"]) == ("eu-west-1", "bob", "host-a")

    assert cli(manager, "alerts", "--user", "bob", "--rule", "80202", "--json") == 0
    assert [a["id"] for a in json.loads(capsys.readouterr().out)] == [alerts[2].id]
    assert cli(manager, "alerts", "--min-level", "5", "--json") == 0
    assert [a["id"] for a in json.loads(capsys.readouterr().out)] == [alerts[1].id, alerts[3].id]
    assert (
        cli(manager, "alerts", "--event-name", "StopLogging", "--search", "stoplog", "--json") == 0
    )
    assert [a["rule_id"] for a in json.loads(capsys.readouterr().out)] == ["80203"]


def test_alerts_table_and_paging(seeded: tuple[RunningManager, list[Alert]], capsys: Any) -> None:
    manager, alerts = seeded
    assert cli(manager, "alerts", "--limit", "2") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == [
        "TIME",
        "(UTC)",
        "LEVEL",
        "RULE",
        "DESCRIPTION",
        "ACCOUNT",
        "USER",
        "AGENT",
    ]
    assert "80202" in lines[1] and "bob" in lines[1] and "host-a" in lines[1]
    assert "StopLogging" in lines[2]
    assert len(lines) == 3
    token = err.split("--page-token ")[1].strip()
    assert cli(manager, "alerts", "--limit", "2", "--page-token", token, "--json") == 0
    rest = json.loads(capsys.readouterr().out)
    assert [a["id"] for a in rest] == [alerts[0].id, alerts[3].id]
    assert cli(manager, "alerts", "--limit", "1", "--all", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 4


def test_stats_by_rule_and_hour(seeded: tuple[RunningManager, list[Alert]], capsys: Any) -> None:
    manager, _ = seeded
    assert cli(manager, "stats", "--since", "2d", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["by"] == "rule" and stats["total"] == 4
    assert {b["key"]: b["count"] for b in stats["buckets"]} == {"80202": 2, "80203": 1, "80250": 1}
    assert "batches" in stats["pipeline"]
    assert stats["store"]["alerts"] == 4 and stats["store"]["seen_events"] == 4
    assert cli(manager, "stats", "--since", "2h", "--by", "user") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == ["bob", "2"]
    assert "total: 3 alert(s)" in out
    assert cli(manager, "stats", "--since", "2d", "--by", "hour", "--json") == 0
    hours = json.loads(capsys.readouterr().out)
    assert hours["total"] == 4 and len(hours["buckets"]) in (2, 3)
    keys = [b["key"] for b in hours["buckets"]]
    assert keys == sorted(keys) and all(k.endswith(":00Z") for k in keys)


def test_bad_queries_are_clear_errors(running_manager: RunningManager, capsys: Any) -> None:
    assert cli(running_manager, "alerts", "--from", "last tuesday") == 2
    assert "bad --from time" in capsys.readouterr().err
    assert cli(running_manager, "stats", "--by", "colour") == 2
    assert "unknown field 'colour' for --by" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli(running_manager, "alerts", "--colour", "red")
    assert exited.value.code == 2
    assert "unrecognized arguments: --colour red" in capsys.readouterr().err
    # The manager validates too: a client that skips the CLI's checks gets INVALID_ARGUMENT.
    args = argparse.Namespace(credentials=str(running_manager.home.credentials))
    with admin_stub(args) as stub:
        with pytest.raises(grpc.RpcError) as caught:
            stub.QueryAlerts(admin_pb2.AlertQuery(since="soon"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "bad --since 'soon'" in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Stats(admin_pb2.StatsRequest(by="colour"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown field 'colour'" in caught.value.details()


@pytest.fixture
def follower(
    running_manager: RunningManager,
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    """`admin alerts --follow --json --rule 80202` as a real subprocess; its lines in a queue."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trailwarden.manager.admin.alerts_cli",
            "alerts",
            "--follow",
            "--json",
            "--rule",
            "80202",
            "--credentials",
            str(running_manager.home.credentials),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_follow_receives_an_alert_raised_after_it_starts(
    running_manager: RunningManager, follower: tuple[subprocess.Popen[str], queue.Queue[str]]
) -> None:
    proc, lines = follower
    before = make_alert(rule_id="80202", user="before", when=now_minus(1))
    commit(running_manager, [before])
    # Raise markers until one comes through: from then on the stream is certainly live.
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 40  # generous: a loaded CI box starts Python slowly
    while not received:
        assert time.monotonic() < deadline, "follow never delivered a marker alert"
        commit(running_manager, [make_alert(rule_id="80202", user="marker", when=now_minus(0))])
        try:
            received.append(json.loads(lines.get(timeout=0.5)))
        except queue.Empty:
            continue
    other_rule = make_alert(rule_id="80203", user="target", when=now_minus(0))
    target = make_alert(rule_id="80202", user="target", when=now_minus(0))
    commit(running_manager, [other_rule, target])
    while received[-1]["id"] != target.id:
        received.append(json.loads(lines.get(timeout=10)))
    assert received[-1]["alert"] == target.to_wazuh()
    ids = [a["id"] for a in received]
    assert before.id not in ids and other_rule.id not in ids
    assert {a["user"] for a in received} == {"marker", "target"}
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def test_installed_entry_point(
    seeded: tuple[RunningManager, list[Alert]], trailwarden: Any
) -> None:
    """`trailwarden admin alerts|stats` as a user runs them, in a subprocess."""
    manager, alerts = seeded
    creds = ("--credentials", str(manager.home.credentials))
    done = trailwarden("admin", "alerts", "--rule", "80202", "--json", *creds)
    assert done.returncode == 0, done.stderr
    assert [a["id"] for a in json.loads(done.stdout)] == [alerts[2].id, alerts[0].id]
    done = trailwarden("admin", "stats", "--by", "level", "--json", *creds)
    assert done.returncode == 0, done.stderr
    assert {b["key"]: b["count"] for b in json.loads(done.stdout)["buckets"]} == {
        "3": 2,
        "10": 1,
        "5": 1,
    }
    done = trailwarden("admin", "alerts", "--since", "24h", "--to", "2026-NOV-99", *creds)
    assert done.returncode == 2
    assert "bad --to time" in done.stderr
