"""Source state and errors reach the manager and are shown by `trailwarden admin agents`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.aws import AwsProfile, cloudtrail_key, make_record, put_cloudtrail_object
from tests.fixtures.system import RunningManager, run_cli
from trailwarden.agent.config import load_agent_config
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.runner import AgentRunner


def test_corrupt_object_is_reported_to_admins_with_bucket_and_key(
    running_manager: RunningManager,
    enrolled_agent: Callable[[str], Path],
    s3: Any,
    new_bucket: Callable[[], str],
    aws_profile: AwsProfile,
) -> None:
    from datetime import UTC, datetime

    bucket = new_bucket()
    when = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    good_key = cloudtrail_key("111122223333", "us-east-1", when)
    put_cloudtrail_object(s3, bucket, good_key, [make_record()])
    bad_key = cloudtrail_key("111122223333", "us-east-1", when.replace(minute=5))
    s3.put_object(Bucket=bucket, Key=bad_key, Body=b"\x1f\x8b\x08\x00 truncated gzip")
    home = enrolled_agent("collector-1")
    config = home / "agent.toml"
    config.write_text(
        config.read_text()
        + f"""
[[sources]]
type = "cloudtrail"
name = "org-trail"
bucket = "{bucket}"
aws_profile = "{aws_profile.name}"
service_endpoint = "{aws_profile.endpoint}"
only_logs_after = "2026-11-01"
"""
    )
    result = AgentRunner(load_agent_config(home), AgentIdentity.load(home)).run_once()
    assert result.failed == 1 and result.records == 1

    env = {"TRAILWARDEN_CREDENTIALS": str(running_manager.home.credentials)}
    listed = run_cli("admin", "agents", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (agent,) = json.loads(listed.stdout)
    (source,) = agent["status_detail"]["sources"]
    assert source["name"] == "org-trail"
    assert int(source["objects_failed"]) == 1
    problems = source["problems"]
    assert any(p["where"] == f"{bucket}/{bad_key}" and "gzip" in p["reason"] for p in problems)
    table = run_cli("admin", "agents", env=env)
    assert table.returncode == 0
    assert "collector-1" in table.stdout
    assert f"{bucket}/{bad_key}" in table.stdout  # visible without --json too
