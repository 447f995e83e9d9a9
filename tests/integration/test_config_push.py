"""Central config pushed to a real agent process: applied live (same PID) within a second,
collection follows it (a new bucket's records arrive, a removed source stops), a revision that
fails on the agent leaves the old config running, rollback restores an earlier revision, and an
agent that was offline gets the revision when it reconnects."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.fixtures.aws import AwsProfile, cloudtrail_key, make_record, put_cloudtrail_object
from tests.fixtures.system import CLI, RunningManager
from trailwarden.agent.identity import AgentIdentity
from trailwarden.common import channels, tls
from trailwarden.common.wire import admin_pb2, admin_pb2_grpc

ACCOUNT = "111122223333"
GROUP = "edge"


class Agent:
    """`trailwarden agent run` as a subprocess."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home = home
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "agent", "run", "--home", str(self.home)], stdout=out, stderr=out
            )
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def admin(running_manager: RunningManager) -> Iterator[admin_pb2_grpc.AdminStub]:
    bundle = tls.AdminBundle.load(running_manager.home.credentials)
    channel = grpc.secure_channel(
        bundle.address,
        channels.client_channel_credentials(bundle.ca_pem, bundle.cert_pem, bundle.key_pem),
        options=channels.channel_options(bundle.server_name or "localhost"),
    )
    yield admin_pb2_grpc.AdminStub(channel)
    channel.close()


@pytest.fixture
def agent(
    running_manager: RunningManager,
    enrolled_agent: Callable[[str], Path],
    admin: admin_pb2_grpc.AdminStub,
    aws_profile: AwsProfile,
    tmp_path: Path,
) -> Iterator[Agent]:
    home = enrolled_agent("edge-1")
    agent_id = AgentIdentity.load(home).agent_id
    admin.AssignGroup(admin_pb2.AssignGroupRequest(agent_id=agent_id, group=GROUP), timeout=10)
    runner = Agent(home, tmp_path / "agent.log")
    try:
        yield runner
    finally:
        runner.stop()


def _source(bucket: str, profile: AwsProfile, profile_name: str = "") -> str:
    lines = [
        "[[sources]]",
        'type = "cloudtrail"',
        f'name = "{bucket}"',
        f'bucket = "{bucket}"',
        f'aws_profile = "{profile_name or profile.name}"',
        f'service_endpoint = "{profile.endpoint}"',
        'interval = "1s"',
        "workers = 2",
    ]
    return "\n".join(lines) + "\n"


def _put(s3: Any, bucket: str, count: int = 3) -> set[str]:
    records = [make_record() for _ in range(count)]
    key = cloudtrail_key(ACCOUNT, "us-east-1", datetime.now(UTC))
    put_cloudtrail_object(s3, bucket, key, records)
    return {r["eventID"] for r in records}


def _stored(running_manager: RunningManager) -> set[str]:
    db = sqlite3.connect(running_manager.home.path / "manager.db", timeout=30)
    try:
        return {r[0] for r in db.execute("SELECT event_key FROM seen_events")}
    finally:
        db.close()


def _wait(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not reached in {timeout}s: {what}")


def _status(admin: admin_pb2_grpc.AdminStub, agent_id: str) -> admin_pb2.AgentConfigStatus:
    (row,) = admin.ConfigStatus(admin_pb2.ConfigStatusRequest(agent_id=agent_id), timeout=10).agents
    return row


def _set(admin: admin_pb2_grpc.AdminStub, text: str) -> admin_pb2.ConfigRevision:
    return admin.SetConfig(
        admin_pb2.SetConfigRequest(target=admin_pb2.ConfigTarget(group=GROUP), config_toml=text),
        timeout=10,
    )


def _applied_within(
    admin: admin_pb2_grpc.AdminStub, agent_id: str, revision: int, timeout: float = 10.0
) -> float:
    def done() -> bool:
        row = _status(admin, agent_id)
        return row.state == "applied" and row.applied_revision == revision

    return _wait(done, timeout, f"revision {revision} applied")


def test_live_push_follows_config_without_restarting_the_agent(
    running_manager: RunningManager,
    admin: admin_pb2_grpc.AdminStub,
    agent: Agent,
    s3: Any,
    new_bucket: Callable[[], str],
    aws_profile: AwsProfile,
) -> None:
    agent_id = AgentIdentity.load(agent.home).agent_id
    first_bucket, second_bucket = new_bucket(), new_bucket()
    first_ids = _put(s3, first_bucket)
    pid = agent.start()
    sessions = running_manager.server.sessions
    _wait(lambda: sessions.is_connected(agent_id), what="agent connected")

    # 1. A first bucket: applied within a second, its records arrive.
    rev1 = _set(admin, _source(first_bucket, aws_profile))
    assert _applied_within(admin, agent_id, rev1.revision) < 1.0
    _wait(lambda: first_ids <= _stored(running_manager), what="first bucket's records")

    # 2. Switch to the second bucket: the first source stops, the new one collects.
    rev2 = _set(admin, _source(second_bucket, aws_profile))
    assert _applied_within(admin, agent_id, rev2.revision) < 1.0
    late_first = _put(s3, first_bucket)
    second_ids = _put(s3, second_bucket)
    _wait(lambda: second_ids <= _stored(running_manager), what="second bucket's records")
    more_second = _put(s3, second_bucket)  # two more passes of the live source, at least
    _wait(lambda: more_second <= _stored(running_manager), what="more second-bucket records")
    assert not late_first & _stored(running_manager), "the removed source kept collecting"

    # 3. A revision the agent cannot apply (no such profile on its host): failed, with the
    #    reason; the previous config keeps collecting.
    bad = _set(admin, _source(second_bucket, aws_profile, profile_name="not-on-this-host"))
    _wait(
        lambda: _status(admin, agent_id).state == "failed",
        what="failed status",
    )
    row = _status(admin, agent_id)
    assert row.desired_revision == bad.revision and row.applied_revision == rev2.revision
    assert "not-on-this-host" in row.error
    still = _put(s3, second_bucket)
    _wait(lambda: still <= _stored(running_manager), what="old config still collecting")

    # 4. Roll back to the first revision: the first bucket is collected again.
    back = admin.RollbackConfig(
        admin_pb2.RollbackConfigRequest(
            target=admin_pb2.ConfigTarget(group=GROUP), to_revision=rev1.revision
        ),
        timeout=10,
    )
    assert back.hash == rev1.hash
    _applied_within(admin, agent_id, back.revision)
    _wait(lambda: late_first <= _stored(running_manager), what="first bucket after rollback")

    assert agent.alive() and agent.proc is not None and agent.proc.pid == pid  # never restarted


def test_offline_agent_gets_the_revision_when_it_reconnects(
    running_manager: RunningManager,
    admin: admin_pb2_grpc.AdminStub,
    agent: Agent,
    s3: Any,
    new_bucket: Callable[[], str],
    aws_profile: AwsProfile,
) -> None:
    agent_id = AgentIdentity.load(agent.home).agent_id
    bucket = new_bucket()
    ids = _put(s3, bucket)
    revision = _set(admin, _source(bucket, aws_profile))
    row = _status(admin, agent_id)
    assert (row.state, row.desired_revision, row.applied_revision) == (
        "pending",
        revision.revision,
        0,
    )
    agent.start()
    _applied_within(admin, agent_id, revision.revision, timeout=20)
    _wait(lambda: ids <= _stored(running_manager), what="records after reconnect")

    # Restarted, the agent resumes the saved revision and says so in its hello: nothing resent.
    agent.stop()
    agent.start()
    sessions = running_manager.server.sessions
    _wait(lambda: sessions.is_connected(agent_id), what="reconnected")
    more = _put(s3, bucket)
    _wait(lambda: more <= _stored(running_manager), what="collecting after restart")
    row = _status(admin, agent_id)
    assert (row.state, row.applied_revision) == ("applied", revision.revision)


def test_run_once_applies_a_newly_pushed_config_and_makes_its_pass(
    running_manager: RunningManager,
    admin: admin_pb2_grpc.AdminStub,
    agent: Agent,
    s3: Any,
    new_bucket: Callable[[], str],
    aws_profile: AwsProfile,
) -> None:
    # The agent has no sources of its own; the only source is the central revision pushed
    # while it was offline. One `run --once` must apply it and read the bucket in that run.
    agent_id = AgentIdentity.load(agent.home).agent_id
    bucket = new_bucket()
    ids = _put(s3, bucket, count=4)
    revision = _set(admin, _source(bucket, aws_profile))
    result = subprocess.run(
        [*CLI, "agent", "run", "--home", str(agent.home), "--once"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert ids <= _stored(running_manager), result.stderr[-3000:]
    assert "pass complete: 0 objects" not in result.stderr + result.stdout
    row = _status(admin, agent_id)
    assert (row.state, row.applied_revision) == ("applied", revision.revision)
