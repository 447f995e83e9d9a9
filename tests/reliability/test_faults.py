"""Fault tests: S3 misbehaving, the manager away or its database busy, the spool's disk
failing, and graceful shutdown of either side."""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import AwsProfile, cloudtrail_key
from tests.fixtures.faults import FaultProxy
from tests.fixtures.system import ManagerProcess
from tests.reliability.corpus import envelope, record
from tests.reliability.processes import (
    AgentProcess,
    LimitedManager,
    alert_counts,
    files_taken,
    spool_state,
    stored_count,
    stored_ids,
    wait_until,
    write_agent_toml,
    write_trail_files,
)
from trailwarden.agent.collector import Collector
from trailwarden.agent.enroll import enroll
from trailwarden.agent.spool import Spool
from trailwarden.common.schema.sources import parse_sources
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.store.sqlite.database import Database

AREA = "Crash and fault"


def _enrolled_agent(manager: ManagerProcess, tmp_path: Path) -> Path:
    database = Database(manager.home.path / "manager.db")
    token = Registry(database).create_token(600, 1, "", "test").token
    database.close()
    home = tmp_path / "agent"
    enroll(home, manager.home.enroll_address, token, manager.home.ca_fingerprint, "fault-agent")
    return home


def _source(folder: Path) -> dict[str, Any]:
    return {"type": "directory", "name": "backfill", "path": str(folder), "workers": 2}


def _assert_all_once(database: Path, expected: set[str]) -> None:
    missing = expected - stored_ids(database)
    assert not missing, f"{len(missing)} records lost"
    alerts = alert_counts(database)
    assert max(alerts.values()) == 1, "duplicate alerts"
    assert expected <= {event_id for event_id, _ in alerts}


# ---- S3 -------------------------------------------------------------------------------------


def test_s3_throttling_errors_resets_and_slow_responses_lose_nothing(
    s3: Any,
    new_bucket: Any,
    aws_profile: AwsProfile,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """S3 through a fault proxy: 503 SlowDown, 500, 503, connection resets, 1.5 s stalls on
    listings and downloads, and a body cut in half: boto3 retries with backoff, the cut
    object is logged with bucket/key and retried next pass, every record arrives once."""
    bucket = new_bucket()
    expected: set[str] = set()
    day = "2026-11-01T10:00:00+00:00"
    from datetime import datetime

    when = datetime.fromisoformat(day)
    for index in range(12):
        records = [record() for _ in range(20)]
        key = cloudtrail_key("111122223333", "us-east-1", when, unique=f"{index:03d}")
        s3.put_object(Bucket=bucket, Key=key, Body=envelope(records))
        expected |= {r["eventID"] for r in records}
    objects = "/AWSLogs/111122223333/CloudTrail/us-east-1/2026/"
    fault_proxy.inject("slow", times=1, method="GET", path_contains="list-type", delay=1.5)
    fault_proxy.inject("throttle", times=3, method="GET", path_contains=objects)
    fault_proxy.inject("error500", times=2, method="GET", path_contains=objects)
    fault_proxy.inject("error503", times=2, method="GET", path_contains=objects)
    fault_proxy.inject("reset", times=2, method="GET", path_contains=objects)
    fault_proxy.inject("slow", times=2, method="GET", path_contains=objects, delay=1.5)
    fault_proxy.inject("throttle", times=2, method="GET", path_contains="list-type")
    fault_proxy.inject("truncate", times=1, method="GET", path_contains=objects)
    table = {
        "type": "cloudtrail",
        "bucket": bucket,
        "aws_profile": aws_profile.name,
        "service_endpoint": fault_proxy.url,
        "only_logs_after": "2026-11-01",
        "workers": 4,
    }
    spool = Spool(tmp_path / "spool.db", 1 << 30)
    collector = Collector(parse_sources([table], "test"), spool, state_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="trailwarden"):
        first = collector.run_once()
        second = collector.run_once()  # takes what the first pass could not
    delivered: Counter[str] = Counter()
    while batches := spool.pending(0, 1000):
        delivered.update(json.loads(r)["eventID"] for b in batches for r in b.records)
        spool.ack(b.sequence for b in batches)
    spool.close()
    assert fault_proxy.pending() == 0, "not every fault was exercised"
    assert sum(fault_proxy.served.values()) == 15
    assert set(delivered) == expected and max(delivered.values()) == 1
    assert first.objects_done + second.objects_done == 12
    retried = [r.getMessage() for r in caplog.records if "will retry" in r.getMessage()]
    assert len(retried) == first.objects_failed == 1
    assert f"s3://{bucket}/AWSLogs/" in retried[0]


# ---- the manager away ------------------------------------------------------------------------


@pytest.mark.slow
def test_manager_unreachable_spool_fills_to_its_limit_pauses_then_drains(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """With the manager down, the agent spools up to its 1 MB limit and stops taking files
    (a clear 'spool: full' log line); when the manager returns the spool drains completely
    and every record arrives once."""
    manager_process.start()
    home = _enrolled_agent(manager_process, tmp_path)
    assert manager_process.terminate() == 0
    expected = write_trail_files(tmp_path / "trail", files=30, per_file=100, pad=600)
    write_agent_toml(home, manager_process.home, [_source(tmp_path / "trail")], spool_limit="1MB")
    spool = home / "spool.db"
    agent = AgentProcess(home, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(lambda: "spool: full" in agent.log, 60, "the spool to fill")
        taken = files_taken(spool)
        time.sleep(2.0)
        assert files_taken(spool) == taken < 30, "fetching did not pause"
        batches, size = spool_state(spool)
        assert 0 < size <= 1_000_000 and batches > 0
        manager_process.start()
        database = manager_process.home.path / "manager.db"
        wait_until(lambda: stored_count(database) >= len(expected), 120, "the drain")
        wait_until(lambda: spool_state(spool)[0] == 0, 30, "an empty spool")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    _assert_all_once(manager_process.home.path / "manager.db", expected)


@pytest.mark.slow
def test_manager_database_locked_means_no_acks_then_recovery(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """Another process holds the manager database's write lock for 12 s (past its 10 s busy
    timeout): nothing is acknowledged, the agent keeps its batches; once the lock is gone
    every record is stored exactly once."""
    manager_process.start()
    home = _enrolled_agent(manager_process, tmp_path)
    expected = write_trail_files(tmp_path / "trail", files=10, per_file=200)
    write_agent_toml(home, manager_process.home, [_source(tmp_path / "trail")])
    database = manager_process.home.path / "manager.db"
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    agent = AgentProcess(home, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(lambda: spool_state(home / "spool.db")[0] > 0, 60, "records spooled")
        time.sleep(12)
        assert stored_count(database) == 0
        assert spool_state(home / "spool.db")[0] > 0  # not acknowledged: still held
        blocker.execute("ROLLBACK")
        wait_until(lambda: stored_count(database) >= len(expected), 120, "recovery")
        wait_until(lambda: spool_state(home / "spool.db")[0] == 0, 60, "acks")
        assert agent.terminate() == 0
    finally:
        blocker.close()
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    _assert_all_once(database, expected)
    assert "busy or unwritable" in manager_process.log_path.read_text()  # said so, clearly


# ---- the agent's disk ---------------------------------------------------------------------


def _limit_file_size(limit: int) -> Any:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


@pytest.mark.slow
def test_spool_disk_full_pauses_fetching_with_a_clear_error_then_recovers(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """The agent process may not grow any file past 600 KB (RLIMIT_FSIZE, so writes fail as
    on a full disk): spool writes fail with a logged 'cannot store ... retrying', fetching
    waits; when the limit is lifted it resumes and every record arrives once."""
    manager_process.start()
    home = _enrolled_agent(manager_process, tmp_path)
    expected = write_trail_files(tmp_path / "trail", files=20, per_file=100, pad=600)
    write_agent_toml(home, manager_process.home, [_source(tmp_path / "trail")])
    (home / "spool.db").unlink(missing_ok=True)
    database = manager_process.home.path / "manager.db"
    agent = AgentProcess(home, tmp_path / "agent.log")
    agent.start(preexec=_limit_file_size(600_000))
    try:
        wait_until(lambda: "cannot store" in agent.log, 60, "the spool write to fail")
        assert agent.proc is not None and agent.proc.poll() is None
        assert stored_count(database) < len(expected)
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(agent.proc.pid, resource.RLIMIT_FSIZE, unlimited)
        wait_until(lambda: stored_count(database) >= len(expected), 120, "recovery")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    _assert_all_once(database, expected)
    assert "retrying" in agent.log


# ---- graceful shutdown ----------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_on_either_side_finishes_in_flight_work(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """SIGTERM to the manager mid-stream: it drains and exits 0; SIGTERM to the agent
    mid-stream: it exits 0 within its drain time; after both restart, every record is
    stored exactly once."""
    manager_process.start()
    home = _enrolled_agent(manager_process, tmp_path)
    expected = write_trail_files(tmp_path / "trail", files=40, per_file=500)
    write_agent_toml(home, manager_process.home, [_source(tmp_path / "trail")])
    database = manager_process.home.path / "manager.db"
    agent = AgentProcess(home, tmp_path / "agent.log")
    agent.start()
    try:
        wait_until(lambda: stored_count(database) >= 4_000, 120, "streaming")
        assert manager_process.terminate() == 0
        assert "manager stopped" in manager_process.log_path.read_text()
        manager_process.start()
        wait_until(lambda: stored_count(database) >= 12_000, 120, "streaming again")
        started = time.monotonic()
        assert agent.terminate() == 0
        assert time.monotonic() - started < 15
        assert "agent stopped" in agent.log
        agent.start()  # whatever the drain did not finish, the restart sends
        wait_until(lambda: agent.log.count("stage=start agent") == 2, 60, "the restart")
        wait_until(lambda: stored_count(database) >= len(expected), 120, "the rest")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    _assert_all_once(database, expected)
    assert os.path.exists(database)


# ---- the manager's disk -------------------------------------------------------------------


@pytest.mark.slow
def test_manager_disk_write_failing_means_no_acks_then_recovery(
    manager_home: Any, tmp_path: Path
) -> None:
    """The manager process may not grow its files (RLIMIT_FSIZE just above the database's
    size at start, so writes fail as on a full disk): batches are not acknowledged and the
    failure is logged; when the limit is lifted every record is stored exactly once."""
    setup = ManagerProcess(manager_home, tmp_path / "setup.log")
    setup.start()
    home = _enrolled_agent(setup, tmp_path)
    assert setup.terminate() == 0
    used = sum(p.stat().st_size for p in manager_home.path.glob("manager.db*"))
    manager = LimitedManager(
        manager_home, tmp_path / "manager.log", _limit_file_size(used + 64_000)
    )
    expected = write_trail_files(tmp_path / "trail", files=10, per_file=300, pad=200)
    write_agent_toml(home, manager_home, [_source(tmp_path / "trail")])
    database = manager_home.path / "manager.db"
    agent = AgentProcess(home, tmp_path / "agent.log")
    manager.start()
    agent.start()
    try:
        wait_until(lambda: "not committed, no ack" in manager.log_path.read_text(), 60, "failure")
        assert manager.proc is not None and manager.proc.poll() is None  # failing, not dead
        assert spool_state(home / "spool.db")[0] > 0  # the agent still holds the batches
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(manager.proc.pid, resource.RLIMIT_FSIZE, unlimited)
        wait_until(lambda: stored_count(database) >= len(expected), 120, "recovery")
        wait_until(lambda: spool_state(home / "spool.db")[0] == 0, 60, "acks")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
        if manager.proc is not None and manager.proc.poll() is None:
            manager.proc.kill()
            manager.proc.wait(10)
    _assert_all_once(database, expected)
