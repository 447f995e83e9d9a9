"""Crash tests: real manager and agent processes, killed with SIGKILL mid-stream."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import fill_bucket_from_dataset
from tests.fixtures.system import ManagerProcess, make_manager_home
from tests.reliability.processes import (
    AgentProcess,
    alert_counts,
    enroll_agent,
    stored_count,
    stored_ids,
    wait_until,
    write_agent_toml,
    write_trail_files,
)

AREA = "Crash and fault"
STREAM_RECORDS = 50_000
BACKFILL_RECORDS = 12_000


def _directory_source(folder: Path) -> dict[str, object]:
    return {"type": "directory", "name": "backfill", "path": str(folder), "workers": 2}


def _assert_exactly_once(database: Path, expected: set[str]) -> None:
    stored = stored_ids(database)
    missing = expected - stored
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:3]}"
    assert stored_count(database) == len(stored)
    duplicates = [key for key, count in alert_counts(database).items() if count > 1]
    assert not duplicates, f"duplicate alerts: {duplicates[:3]}"
    alerted = {event_id for event_id, _ in alert_counts(database)}
    assert expected <= alerted  # every record alerted (root logins), once per rule


@pytest.mark.slow
def test_manager_killed_while_an_agent_streams_50k_records(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """Manager SIGKILLed twice while an agent process streams 50,000 records, restarted each
    time: every eventID is stored exactly once and alerts exactly once per rule, in the
    database and in alerts.json."""
    manager_process.start()
    home = enroll_agent(manager_process, tmp_path)
    expected = write_trail_files(tmp_path / "trail", files=50, per_file=STREAM_RECORDS // 50)
    write_agent_toml(home, manager_process.home, [_directory_source(tmp_path / "trail")])
    database = manager_process.home.path / "manager.db"
    agent = AgentProcess(home, tmp_path / "agent.log")
    agent.start()
    try:
        for threshold in (STREAM_RECORDS // 5, STREAM_RECORDS // 2):
            wait_until(lambda t=threshold: stored_count(database) >= t, 120, f"{threshold} stored")
            manager_process.kill()
            killed_at = stored_count(database)
            assert killed_at < STREAM_RECORDS  # killed mid-stream, not after
            manager_process.start()
        wait_until(lambda: stored_count(database) >= STREAM_RECORDS, 180, "every record")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    _assert_exactly_once(database, expected)
    assert "reconnecting" in agent.log  # it noticed, and came back by itself
    # alerts.json (what Filebeat/Vector read) never repeats an alert across the crashes.
    written: Counter[tuple[str, str]] = Counter()
    for file in (manager_process.home.path / "alerts").rglob("*.json"):
        for line in file.read_text().splitlines():
            alert = json.loads(line)
            written[(alert["data"]["aws"]["eventID"], alert["rule"]["id"])] += 1
    assert written and max(written.values()) == 1


@pytest.mark.slow
def test_agent_killed_mid_backfill_three_times(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """An agent process SIGKILLed three times during a 12,000-record backfill and restarted:
    nothing lost, no duplicate alerts, and the final run takes only what was left."""
    manager_process.start()
    home = enroll_agent(manager_process, tmp_path)
    expected = write_trail_files(tmp_path / "trail", files=60, per_file=BACKFILL_RECORDS // 60)
    write_agent_toml(home, manager_process.home, [_directory_source(tmp_path / "trail")])
    database = manager_process.home.path / "manager.db"
    agent = AgentProcess(home, tmp_path / "agent.log")
    try:
        for kill in range(1, 4):
            agent.start()
            wait_until(
                lambda k=kill: stored_count(database) >= k * BACKFILL_RECORDS // 5,
                120,
                f"{kill}/5 of the backfill",
            )
            agent.kill()
        before_last = stored_count(database)
        assert before_last < BACKFILL_RECORDS
        agent.start()
        wait_until(lambda: stored_count(database) >= BACKFILL_RECORDS, 120, "the whole backfill")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    _assert_exactly_once(database, expected)


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (the manager's analysis workers)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_manager_with_analysis_workers_killed_leaves_no_orphans_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """The production layout (2 analysis worker processes): the manager SIGKILLed mid-stream
    leaves no orphaned worker behind, and after a restart every record is stored once and
    alerts once per rule."""
    home = make_manager_home(tmp_path / "manager", analysis_workers=2)
    manager = ManagerProcess(home, tmp_path / "manager.log")
    manager.start()
    agent = AgentProcess(enroll_agent(manager, tmp_path), tmp_path / "agent.log")
    expected = write_trail_files(tmp_path / "trail", files=20, per_file=500)
    write_agent_toml(agent.home, home, [_directory_source(tmp_path / "trail")])
    database = home.path / "manager.db"
    agent.start()
    try:
        wait_until(lambda: stored_count(database) >= 2_000, 120, "streaming")
        assert manager.proc is not None
        workers = _children(manager.proc.pid)
        assert len(workers) >= 2
        manager.kill()
        wait_until(lambda: not any(_alive(w) for w in workers), 30, "orphaned workers to exit")
        manager.start()
        wait_until(lambda: stored_count(database) >= len(expected), 180, "every record")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
        if manager.proc is not None and manager.proc.poll() is None:
            manager.proc.kill()
            manager.proc.wait(10)
    _assert_exactly_once(database, expected)


@pytest.mark.slow
def test_agent_reading_s3_killed_three_times_delivers_a_real_trail_once(
    manager_process: ManagerProcess,
    s3: Any,
    new_bucket: Any,
    aws_profile: Any,
    tmp_path: Path,
) -> None:
    """The invictus-ir CloudTrail dataset (2,900 real events, 55 files) in a moto bucket, read
    by an agent process through its AWS profile and SIGKILLed three times mid-backfill: after a
    restart every eventID is stored once and no alert is duplicated."""
    bucket = new_bucket()
    expected = fill_bucket_from_dataset(s3, bucket)
    manager_process.start()
    home = enroll_agent(manager_process, tmp_path)
    source = {
        "type": "cloudtrail",
        "bucket": bucket,
        "aws_profile": aws_profile.name,
        "service_endpoint": aws_profile.endpoint,
        "only_logs_after": "2023-07-01",
        "workers": 2,
    }
    write_agent_toml(home, manager_process.home, [source])
    database = manager_process.home.path / "manager.db"
    agent = AgentProcess(home, tmp_path / "agent.log")
    try:
        for kill in range(1, 4):
            agent.start()
            wait_until(
                lambda k=kill: stored_count(database) >= k * len(expected) // 5,
                120,
                f"{kill}/5 of the trail",
            )
            agent.kill()
        assert stored_count(database) < len(expected)
        agent.start()
        wait_until(lambda: stored_count(database) >= len(expected), 120, "the whole trail")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    assert stored_ids(database) >= expected
    duplicates = [key for key, count in alert_counts(database).items() if count > 1]
    assert not duplicates, duplicates[:3]
