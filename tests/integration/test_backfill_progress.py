"""Progress in service mode: a backfill from a real S3 (moto) collected by `agent run` logs its
progress every progress_log_seconds, reports each source's lag behind the newest object, and
`trailwarden admin agents` prints a line per source (state, last pass, objects, records, lag)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import AwsProfile, cloudtrail_key, make_record, put_cloudtrail_object
from tests.fixtures.system import RunningManager, run_cli
from trailwarden.agent.config import load_agent_config
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.runner import AgentRunner

OBJECTS = 240
"""Good objects of the backfill: enough that one worker takes over a second on moto."""
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
_PROGRESS = re.compile(
    r"progress: source org-trail: objects (?P<done>[\d,]+)/(?P<known>[\d,]+) known, "
    r"records (?P<records>[\d,]+), (?P<rate>[\d,]+) records/s, lag (?P<lag>.+)$"
)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_a_backfill_logs_progress_and_admin_agents_shows_each_source_and_its_lag(
    running_manager: RunningManager,
    enrolled_agent: Callable[[str], Path],
    s3: Any,
    new_bucket: Callable[[], str],
    aws_profile: AwsProfile,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = new_bucket()
    for index in range(OBJECTS):
        key = cloudtrail_key("111122223333", "us-east-1", START + timedelta(minutes=5 * index))
        put_cloudtrail_object(s3, bucket, key, [make_record(), make_record()])
    # The newest object cannot be collected: the source stays behind it by the gap to the
    # newest good object, which is what the lag must say.
    newest = START + timedelta(minutes=5 * OBJECTS + 25)
    bad_key = cloudtrail_key("111122223333", "us-east-1", newest)
    s3.put_object(Bucket=bucket, Key=bad_key, Body=b"\x1f\x8b\x08\x00 truncated gzip")
    expected_lag_ms = 30 * 60 * 1000  # newest (bad) minus the newest good object's time

    home = enrolled_agent("collector-1")
    config = home / "agent.toml"
    text = config.read_text().replace('heartbeat = "15s"', 'heartbeat = "1s"')
    text = text.replace("progress_log_seconds = 30", "progress_log_seconds = 1")
    assert "progress_log_seconds = 1" in text and 'heartbeat = "1s"' in text
    config.write_text(
        text
        + f"""
[[sources]]
type = "cloudtrail"
name = "org-trail"
bucket = "{bucket}"
aws_profile = "{aws_profile.name}"
service_endpoint = "{aws_profile.endpoint}"
only_logs_after = "2026-11-19"
workers = 1
interval = "1h"
"""
    )
    runner = AgentRunner(load_agent_config(home), AgentIdentity.load(home))
    thread = threading.Thread(target=runner.run, daemon=True)
    env = {"TRAILWARDEN_CREDENTIALS": str(running_manager.home.credentials)}

    def reported_source() -> dict[str, Any] | None:
        listed = run_cli("admin", "agents", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        (agent,) = json.loads(listed.stdout)
        detail = agent["status_detail"]
        if not detail or not detail.get("sources"):
            return None
        (source,) = detail["sources"]
        done = int(source.get("objects_done", 0))
        return source if done == OBJECTS and source.get("last_pass_unix_ms") else None

    with caplog.at_level(logging.INFO, logger="trailwarden.agent.progress"):
        thread.start()
        try:
            deadline = time.monotonic() + 120
            source = reported_source()
            while source is None:
                assert time.monotonic() < deadline, "the pass did not finish and report"
                time.sleep(0.5)
                source = reported_source()
        finally:
            runner.stop_event.set()
            thread.join(30)
    assert not thread.is_alive()

    lines = [
        match
        for record in caplog.records
        if record.name == "trailwarden.agent.progress"
        and (match := _PROGRESS.search(record.getMessage()))
    ]
    assert lines, [r.getMessage() for r in caplog.records][-10:]
    for match in lines:
        done, known = _number(match["done"]), _number(match["known"])
        assert 0 <= done <= known <= OBJECTS + 1
        assert _number(match["records"]) == 2 * done
    assert any(0 < _number(m["done"]) < OBJECTS for m in lines)  # logged mid-backfill

    assert int(source["lag_ms"]) == expected_lag_ms
    assert source["state"] == "idle" and int(source["records_spooled"]) == 2 * OBJECTS
    table = run_cli("admin", "agents", env=env)
    assert table.returncode == 0, table.stderr
    pass_time = datetime.fromtimestamp(int(source["last_pass_unix_ms"]) / 1000, UTC)
    assert (
        f"  collector-1: source org-trail idle, last pass {pass_time:%Y-%m-%d %H:%M:%S} UTC, "
        f"objects {OBJECTS}, records {2 * OBJECTS}, lag 30m 0s"
    ) in table.stdout
