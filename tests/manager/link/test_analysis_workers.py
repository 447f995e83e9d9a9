"""Analysis in worker processes: an agent's batches always meet the same worker (per-agent
correlation holds), and acks still follow commits."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.system import make_manager_home
from trailwarden.common.errors import PipelineError
from trailwarden.common.model import AgentRef, RecordBatch, SourceMeta
from trailwarden.manager.pipeline.workers import ProcessAnalysis
from trailwarden.manager.server import BackgroundManager

SOURCE = SourceMeta(
    "t",
    "bucket",
    "AWSLogs/123456789012/CloudTrail/us-east-1/x.json.gz",
    "123456789012",
    "us-east-1",
)


def _failed_login(n: int, user: str) -> bytes:
    return json.dumps(
        {
            "eventVersion": "1.08",
            "eventID": f"00000000-0000-0000-0000-{n:012d}",
            "eventTime": f"2026-11-20T08:40:{n:02d}Z",
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.77",
            "recipientAccountId": "123456789012",
            "userIdentity": {
                "type": "IAMUser",
                "userName": user,
                "accountId": "123456789012",
                "arn": f"arn:aws:iam::123456789012:user/{user}",
            },
            "responseElements": {"ConsoleLogin": "Failure"},
            "additionalEventData": {"MFAUsed": "No"},
            "errorMessage": "Failed authentication",
            "eventType": "AwsConsoleSignIn",
        }
    ).encode()


def test_two_workers_keep_per_agent_correlation(tmp_path: Path) -> None:
    home = make_manager_home(tmp_path / "m", analysis_workers=2)
    background = BackgroundManager(home.path)
    server = background.start()
    try:
        assert server.analysis.parallelism == 2
        agents = [AgentRef(f"agent{i:02d}", f"a{i}") for i in range(4)]
        # Five failed logins per agent, one per batch: the burst rule (80255) must fire once
        # per agent, which needs every batch of an agent in the same worker's state.
        for n in range(5):
            for agent in agents:
                raw = _failed_login(n * 10 + int(agent.id[-2:]), "alice")
                server.ingest.process(agent, RecordBatch(n + 1, SOURCE, (raw,)))
    finally:
        background.stop()
    db = sqlite3.connect(home.path / "manager.db")
    bursts = db.execute(
        "SELECT agent_id, COUNT(*) FROM alerts WHERE rule_id = '80255' GROUP BY agent_id"
    ).fetchall()
    failures = db.execute("SELECT COUNT(*) FROM alerts WHERE rule_id = '80254'").fetchone()[0]
    db.close()
    assert sorted(bursts) == [(a.id, 1) for a in agents]
    # The worker sends the rendered document: the stored alert still carries the whole event.
    db = sqlite3.connect(home.path / "manager.db")
    (document,) = db.execute("SELECT json FROM alerts WHERE rule_id = '80255' LIMIT 1").fetchone()
    db.close()
    assert json.loads(document)["data"]["aws"]["eventName"] == "ConsoleLogin"
    assert failures == 4 * 4  # the 5th failure of each agent became the burst alert


def test_a_killed_worker_fails_its_batch_then_is_replaced(tmp_path: Path) -> None:
    """SIGKILL one analysis worker: its batch fails with PipelineError (not acknowledged, so
    the agent resends), the worker is restarted, and the resent batch is stored once."""
    home = make_manager_home(tmp_path / "m", analysis_workers=2)
    background = BackgroundManager(home.path)
    server = background.start()
    agent = AgentRef("agent00", "a0")
    batch = RecordBatch(1, SOURCE, (_failed_login(1, "bob"),))
    try:
        before = set(multiprocessing.active_children())
        assert len(before) >= 2
        for child in before:
            os.kill(child.pid, signal.SIGKILL)
        for child in before:
            child.join(10)
        with pytest.raises(PipelineError, match=r"analysis worker \d+ died"):
            server.ingest.process(agent, batch)
        result = server.ingest.process(agent, batch)  # the agent's resend
        assert (result.new_events, result.alerts) == (1, 1)
        assert not before & set(multiprocessing.active_children())
        again = server.ingest.process(agent, batch)
        assert (again.new_events, again.duplicates) == (0, 1)
    finally:
        background.stop()


def test_batches_queued_when_the_pool_closes_fail_instead_of_hanging(tmp_path: Path) -> None:
    """Closing the workers (the manager stopping) cancels batches still queued: their futures
    fail with PipelineError (no ack, the agent resends) instead of never completing."""
    home = make_manager_home(tmp_path / "m", analysis_workers=1)
    pool = ProcessAnalysis(home.path, 1)
    pool.warm_up()
    agent = AgentRef("agent00", "a0")
    batches = [tuple(_failed_login(n * 100 + i, "carol") for i in range(100)) for n in range(20)]
    futures = [pool.submit(agent, SOURCE, records) for records in batches]
    pool.close()
    outcomes = []
    for future in futures:
        try:
            outcomes.append(len(future.result(timeout=30).new_events))
        except PipelineError as exc:
            assert "manager is stopping" in str(exc)
            outcomes.append(-1)
    assert -1 in outcomes  # some were still queued and were cancelled, none hung
