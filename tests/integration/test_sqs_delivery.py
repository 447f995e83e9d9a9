"""SQS notifications through the whole system: S3 (moto) notifies a queue, agents read it and
forward to a real manager, and a message is deleted only once its records are committed.

- ``agent run --once`` drains the queue and exits; ``admin agents`` shows the SQS counters.
- Two agent processes share one queue of 2,000 notifications while the manager is killed with
  SIGKILL mid-stream and restarted: every record is stored once, the queue ends empty, and at
  no moment were more messages gone from the queue than objects committed by the manager.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import (
    AwsProfile,
    Queue,
    cloudtrail_key,
    make_record,
    notify_queue,
    put_cloudtrail_object,
    queue_depth,
    sqs_source_table,
)
from tests.fixtures.system import ManagerProcess, RunningManager, run_cli
from tests.reliability.processes import (
    AgentProcess,
    alert_counts,
    stored_count,
    stored_ids,
    wait_until,
    write_agent_toml,
)
from trailwarden.agent.config import load_agent_config
from trailwarden.agent.enroll import enroll
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.runner import AgentRunner
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.store.sqlite.database import Database

WHEN = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def put_objects(s3: Any, bucket: str, count: int, per_object: int) -> dict[str, list[str]]:
    """``count`` CloudTrail objects written concurrently; key -> its eventIDs."""

    def one(_: int) -> tuple[str, list[str]]:
        records = [make_record() for _ in range(per_object)]
        key = cloudtrail_key("111122223333", "us-east-1", WHEN)
        put_cloudtrail_object(s3, bucket, key, records)
        return key, [r["eventID"] for r in records]

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, range(count)))


def send_cloudtrail_notifications(
    sqs: Any, queue: Queue, bucket: str, keys: list[str], per_message: int
) -> int:
    """CloudTrail's own notifications (through SNS, as CloudTrail sends them), each naming
    ``per_message`` of ``keys``; returns the number of messages."""
    bodies = [
        json.dumps(
            {
                "Type": "Notification",
                "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail",
                "Message": json.dumps(
                    {"s3Bucket": bucket, "s3ObjectKey": keys[first : first + per_message]}
                ),
            }
        )
        for first in range(0, len(keys), per_message)
    ]
    for first in range(0, len(bodies), 10):
        entries = [
            {"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[first : first + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=queue.url, Entries=entries).get("Failed")
    return len(bodies)


def sqs_counters(db_path: Path) -> list[dict[str, int]]:
    """Each agent's last reported SQS counters, from the manager's registry."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT status_json FROM agents WHERE status_json != ''").fetchall()
    finally:
        conn.close()
    out: list[dict[str, int]] = []
    for (text,) in rows:
        for source in json.loads(text).get("sources", []):
            if "sqs" in source:
                out.append({k: int(v) for k, v in source["sqs"].items()})
    return out


def test_once_drains_the_queue_and_admin_agents_shows_the_counters(
    running_manager: RunningManager,
    enrolled_agent: Callable[[str], Path],
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
) -> None:
    bucket, queue = new_bucket(), new_queue()
    notify_queue(s3, bucket, queue)  # its s3:TestEvent stays: ignored and deleted
    expected = {i for ids in put_objects(s3, bucket, 30, 2).values() for i in ids}
    home = enrolled_agent("sqs-once")
    write_agent_toml(home, running_manager.home, [sqs_source_table(aws_profile, queue)])

    once = run_cli("agent", "run", "--home", str(home), "--once", timeout=90)

    assert once.returncode == 0, once.stderr[-3000:]
    assert "pass complete: 30 objects, 60 records" in once.stderr
    assert queue_depth(sqs, queue.url) == 0
    assert stored_ids(running_manager.home.path / "manager.db") == expected
    env = {"TRAILWARDEN_CREDENTIALS": str(running_manager.home.credentials)}
    listed = run_cli("admin", "agents", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (agent,) = json.loads(listed.stdout)
    (source,) = agent["status_detail"]["sources"]
    assert source["type"] == "cloudtrail-sqs"
    counters = {k: int(v) for k, v in source["sqs"].items()}
    assert counters["messages_received"] == 31
    assert counters["messages_deleted"] == 31
    assert counters["messages_ignored"] == 1
    assert counters.get("messages_held", 0) == 0
    table = run_cli("admin", "agents", env=env)
    assert "source trail-notes: messages received 31, deleted 31" in table.stdout


@pytest.mark.slow
def test_two_agents_share_a_queue_across_a_manager_kill(
    manager_process: ManagerProcess,
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    tmp_path: Path,
) -> None:
    # moto's SQS costs O(queue length) per call, so the 2,000 objects are announced ten to a
    # message, as CloudTrail's own notifications list several keys (S3's one-object
    # notifications are the once test's above and tests/agent/test_sqs_source.py's).
    objects, per_object, per_message = 2000, 2, 10
    bucket, queue = new_bucket(), new_queue()
    written = put_objects(s3, bucket, objects, per_object)
    expected = {event_id for ids in written.values() for event_id in ids}
    messages = send_cloudtrail_notifications(sqs, queue, bucket, list(written), per_message)
    assert queue_depth(sqs, queue.url) == messages == objects // per_message
    home = manager_process.home
    database = Database(home.path / "manager.db")
    token = Registry(database).create_token(600, 2, "", "test").token
    database.close()
    manager_process.start()
    agents: list[AgentProcess] = []
    for name in ("sqs-a", "sqs-b"):
        agent_home = tmp_path / name
        enroll(agent_home, home.enroll_address, token, home.ca_fingerprint, name)
        table = sqs_source_table(aws_profile, queue, visibility_timeout="4s", workers=4)
        write_agent_toml(agent_home, home, [table])
        agents.append(AgentProcess(agent_home, tmp_path / f"{name}.log"))
    db_path = home.path / "manager.db"

    # Deleted messages never outnumber committed objects. The queue is read before the
    # database, which only grows, so a message deleted early cannot hide behind a later commit.
    violations: list[str] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            deleted = messages - queue_depth(sqs, queue.url)
            committed = stored_count(db_path) // per_object
            if deleted * per_message > committed:
                violations.append(f"{deleted} messages deleted, {committed} objects committed")
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for agent in agents:
            agent.start()
        wait_until(lambda: stored_count(db_path) >= len(expected) // 4, 60, "a quarter stored")
        manager_process.kill()  # mid-stream: batches in flight, messages held
        committed_at_kill = stored_count(db_path) // per_object
        time.sleep(6)  # longer than the visibility timeout: the agents must extend it
        assert (messages - queue_depth(sqs, queue.url)) * per_message <= committed_at_kill
        manager_process.start()
        wait_until(lambda: stored_count(db_path) >= len(expected), 90, "every record stored")
        wait_until(lambda: queue_depth(sqs, queue.url) == 0, 30, "the queue emptied")
        # The agents report their counters with each heartbeat (every 2 s here). At least:
        # a message taken by both agents (its visibility ran out on a loaded machine, or
        # moto's threaded server handed it out twice) may be deleted by both.
        wait_until(
            lambda: sum(c.get("messages_deleted", 0) for c in sqs_counters(db_path)) >= messages,
            30,
            "both agents to report every message deleted",
        )
    finally:
        watching.set()
        watcher.join(5)
        for agent in agents:
            agent.stop_quietly()

    assert violations == []
    reported = sqs_counters(db_path)
    assert len(reported) == 2
    assert all(c.get("messages_received", 0) > 0 for c in reported), reported  # both took work
    assert sum(c.get("visibility_extensions", 0) for c in reported) > 0, reported
    assert stored_ids(db_path) == expected
    assert all(count == 1 for count in alert_counts(db_path).values())
    logs = "".join(agent.log for agent in agents)
    assert "Traceback" not in logs
    assert "visibility extension refused" not in logs


def test_the_s3_source_beside_it_for_a_backfill_stores_nothing_twice(
    running_manager: RunningManager,
    enrolled_agent: Callable[[str], Path],
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
) -> None:
    bucket, queue = new_bucket(), new_queue()
    notify_queue(s3, bucket, queue)
    expected = {i for ids in put_objects(s3, bucket, 20, 3).values() for i in ids}
    home = enrolled_agent("sqs-and-s3")
    backfill = {
        "type": "cloudtrail",
        "name": "backfill",
        "bucket": bucket,
        "aws_profile": aws_profile.name,
        "service_endpoint": aws_profile.endpoint,
        "only_logs_after": "2026-11-01",
    }
    write_agent_toml(home, running_manager.home, [backfill, sqs_source_table(aws_profile, queue)])

    result = AgentRunner(load_agent_config(home), AgentIdentity.load(home)).run_once()

    assert result.objects == 40 and result.records == 120  # each object read by both sources
    db_path = running_manager.home.path / "manager.db"
    assert stored_ids(db_path) == expected
    alerts = alert_counts(db_path)
    assert alerts and all(count == 1 for count in alerts.values())
    assert queue_depth(sqs, queue.url) == 0
