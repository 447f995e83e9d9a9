"""Batches are acknowledged only after they are committed, and resent after a restart."""

from __future__ import annotations

import gc
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.system import ManagerProcess, RunningManager, start_link
from trailwarden.agent.spool import Spool
from trailwarden.common.model import SourceMeta
from trailwarden.manager.pipeline.batch_analysis import BatchAnalysis

SOURCE = SourceMeta(
    source="test",
    bucket="trail",
    key="AWSLogs/111122223333/x.json.gz",
    account_id="111122223333",
    region="us-east-1",
)


def _records(n: int) -> tuple[list[bytes], set[str]]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    raws = [
        json.dumps(
            {
                "eventVersion": "1.08",
                "eventID": i,
                "eventTime": "2026-11-20T10:00:00Z",
                "eventSource": "ec2.amazonaws.com",
                "eventName": "DescribeInstances",
                "awsRegion": "us-east-1",
                "recipientAccountId": "111122223333",
                "userIdentity": {"type": "IAMUser", "userName": "alice"},
            }
        ).encode()
        for i in ids
    ]
    return raws, set(ids)


def _stored_ids(db_path: Path) -> set[str]:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT event_key FROM seen_events").fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


def _wait(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_ack_only_after_commit(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> None:
    home = enrolled_agent("web-1")
    spool = Spool(tmp_path / "spool.db", 10 * 1024**2)
    db_path = running_manager.home.path / "manager.db"
    # Hold the manager's database write lock: no batch can be committed, so none may be
    # acknowledged — also not the later ones the link analyses while the first waits to commit.
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    raws, ids = _records(60)
    for start in range(0, 60, 20):
        spool.put(SOURCE, raws[start : start + 20])
    link = start_link(home, running_manager.home.link_address, spool, heartbeat_seconds=1)
    client = link.client
    try:
        _wait(client.connected.is_set)
        time.sleep(1.5)
        assert spool.stats().batches == 3, "acknowledged while the database was locked"
        assert not (ids & _stored_ids_uncommitted_view(db_path))
        blocker.execute("ROLLBACK")
        _wait(lambda: spool.stats().batches == 0, timeout=40)
        assert ids <= _stored_ids(db_path)
    finally:
        blocker.close()
        link.close()
        spool.close()


def _stored_ids_uncommitted_view(db_path: Path) -> set[str]:
    try:
        return _stored_ids(db_path)
    except sqlite3.OperationalError:
        return set()


def test_unacked_batches_are_resent_after_manager_restart(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    from trailwarden.agent.enroll import enroll
    from trailwarden.manager.agents.registry import Registry
    from trailwarden.manager.store.sqlite.database import Database

    home = manager_process.home
    database = Database(home.path / "manager.db")
    token = Registry(database).create_token(600, 1, "", "test").token
    database.close()
    manager_process.start()
    agent_home = tmp_path / "agent"
    enroll(agent_home, home.enroll_address, token, home.ca_fingerprint, "web-1")
    spool = Spool(tmp_path / "spool.db", 50 * 1024**2)
    first, first_ids = _records(300)
    spool.put(SOURCE, first)
    link = start_link(agent_home, home.link_address, spool, heartbeat_seconds=1)
    client = link.client
    try:
        _wait(lambda: spool.stats().batches == 0)
        manager_process.kill()  # SIGKILL: no drain, no goodbye
        second, second_ids = _records(300)
        spool.put(SOURCE, second)  # spooled while the manager is down
        time.sleep(1.0)
        assert spool.stats().batches >= 1
        sessions_before = client.sessions
        manager_process.start()
        _wait(lambda: spool.stats().batches == 0, timeout=60)
        assert client.sessions > sessions_before  # it reconnected by itself
    finally:
        link.close()
        spool.close()
    assert manager_process.terminate() == 0
    stored = _stored_ids(home.path / "manager.db")
    assert first_ids | second_ids <= stored


def test_overlapping_batches_store_and_write_each_event_once(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> None:
    """Each batch repeats the last records of the one before (as a resend after a lost ack
    does). The link analyses a batch while the previous one is still committing; an event of
    both must still be stored once and written to alerts.json once."""
    home = enrolled_agent("web-1")
    spool = Spool(tmp_path / "spool.db", 10 * 1024**2)
    raws, ids = _records(400)
    for start in range(0, 400, 40):
        spool.put(SOURCE, raws[max(0, start - 20) : start + 40])
    link = start_link(home, running_manager.home.link_address, spool, heartbeat_seconds=1)
    try:
        _wait(lambda: spool.stats().batches == 0, timeout=60)
    finally:
        link.close()
        spool.close()
    db = sqlite3.connect(running_manager.home.path / "manager.db")
    try:
        stored = [r[0] for r in db.execute("SELECT event_id FROM alerts WHERE rule_id = '80202'")]
    finally:
        db.close()
    assert sorted(stored) == sorted(ids)
    alerts_json = running_manager.home.path / "alerts" / "alerts.json"
    lines = alerts_json.read_text().splitlines()
    written = [json.loads(line)["data"]["aws"]["eventID"] for line in lines]
    assert sorted(written) == sorted(ids)


def test_an_idle_link_holds_no_analysed_batch(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> None:
    """Once its batches are acknowledged, a connected but idle link keeps none of them, nor
    their alerts: with 1,000 idle agents the last batches held ~40 MiB of the manager."""
    home = enrolled_agent("web-1")
    spool = Spool(tmp_path / "spool.db", 10 * 1024**2)
    raws, _ = _records(50)
    spool.put(SOURCE, raws)
    link = start_link(home, running_manager.home.link_address, spool, heartbeat_seconds=1)
    try:
        _wait(lambda: spool.stats().batches == 0)
        time.sleep(0.5)  # the ack is sent before the committing task finishes its step
        gc.collect()
        held = [o for o in gc.get_objects() if isinstance(o, BatchAnalysis)]
        assert link.client.connected.is_set()
        assert held == []
    finally:
        link.close()
        spool.close()
