"""The whole invictus-ir dataset (2,900 events) from a moto S3 bucket to the manager's database,
exactly once — with the agent SIGKILLed mid-run and the manager down for part of it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.fixtures.aws import AwsProfile, fill_bucket_from_dataset
from tests.fixtures.system import CLI, ManagerProcess, run_cli
from trailwarden.agent.enroll import enroll
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.store.sqlite.database import Database


def _count(db_path: Path, sql: str) -> int:
    db = sqlite3.connect(db_path, timeout=30)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def _spool_batches(spool: Path) -> int:
    try:
        return _count(spool, "SELECT COUNT(*) FROM spool_batches")
    except sqlite3.OperationalError:  # not created yet by the starting agent
        return 0


def test_dataset_reaches_the_manager_exactly_once_across_kills(
    manager_process: ManagerProcess,
    s3: Any,
    new_bucket: Any,
    aws_profile: AwsProfile,
    tmp_path: Path,
) -> None:
    bucket = new_bucket()
    expected = fill_bucket_from_dataset(s3, bucket)
    assert len(expected) == 2900
    home = manager_process.home
    database = Database(home.path / "manager.db")
    token = Registry(database).create_token(600, 1, "", "test").token
    database.close()
    manager_process.start()
    agent_home = tmp_path / "agent"
    enroll(agent_home, home.enroll_address, token, home.ca_fingerprint, "collector-1")
    config = agent_home / "agent.toml"
    # A small spool: with the manager down, fetching must pause part-way through the bucket.
    text = config.read_text().replace('limit = "1GiB"', 'limit = "256KiB"')
    config.write_text(
        text
        + f"""
[[sources]]
type = "cloudtrail"
bucket = "{bucket}"
aws_profile = "{aws_profile.name}"
service_endpoint = "{aws_profile.endpoint}"
only_logs_after = "2023-07-01"
interval = "1h"
workers = 4
"""
    )
    manager_process.kill()  # the manager is down while the agent starts collecting
    log = (tmp_path / "agent.log").open("ab")
    agent = subprocess.Popen(
        [*CLI, "agent", "run", "--home", str(agent_home)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    spool = agent_home / "spool.db"
    try:
        deadline = time.monotonic() + 60
        while _spool_batches(spool) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # let it run into the spool limit: fetching pauses, nothing dropped
        assert _spool_batches(spool) > 0, "agent spooled nothing while the manager was down"
        agent.send_signal(signal.SIGKILL)  # mid-run: part spooled, part not yet fetched
        agent.wait(10)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        log.close()

    manager_process.start()
    once = run_cli(
        "agent", "run", "--home", str(agent_home), "--once", timeout=240, env=os.environ.copy()
    )
    assert once.returncode == 0, once.stderr[-3000:]
    assert "progress: objects" in once.stderr  # not a terminal: progress as log lines
    assert manager_process.terminate() == 0

    db_path = home.path / "manager.db"
    db = sqlite3.connect(db_path)
    stored = {row[0] for row in db.execute("SELECT event_key FROM seen_events")}
    duplicate_alerts = db.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM alerts GROUP BY event_id, rule_id HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    alerts = db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
    db.close()
    assert stored == expected
    assert duplicate_alerts == 0
    assert alerts > 0
    assert _spool_batches(spool) == 0
