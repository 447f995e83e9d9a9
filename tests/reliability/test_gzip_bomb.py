"""A gzip bomb among good objects: a real agent process stays small and moves on."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import AwsProfile, cloudtrail_key
from tests.fixtures.system import ManagerProcess
from tests.reliability.corpus import record
from tests.reliability.processes import (
    peak_rss_mib,
    start_s3_agent,
    stored_ids,
    wait_for_source_count,
    wait_until,
)

AREA = "Adversarial"
BOMB_INFLATED = 1024**3
"""What the bomb inflates to: the issue's 1 GiB (about 1 MB stored)."""
RSS_BOUND_MIB = 450
"""Generous: an idle agent is ~65 MiB and the guard (128 MiB inflated) may cost ~3x while an
object is split; before the fix this bomb took the agent past 2 GiB."""


def _bomb(forge_trailer: bool) -> bytes:
    """A Records document whose one string is BOMB_INFLATED zeros, gzipped at level 9 in steps
    (never held inflated here). ``forge_trailer`` makes the gzip trailer claim 100 bytes, so
    only inflation itself can find out."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [deflate.compress(b'{"Records":[{"eventID":"bomb","requestParameters":"')]
    chunk = b"0" * (1 << 20)
    parts += [deflate.compress(chunk) for _ in range(BOMB_INFLATED // len(chunk))]
    parts += [deflate.compress(b'"}]}'), deflate.flush()]
    data = b"".join(parts)
    return data[:-4] + (100).to_bytes(4, "little") if forge_trailer else data


@pytest.mark.slow
def test_a_gzip_bomb_among_good_objects_is_reported_and_memory_stays_bounded(
    manager_process: ManagerProcess,
    s3: Any,
    new_bucket: Callable[[], str],
    aws_profile: AwsProfile,
    tmp_path: Path,
) -> None:
    """Two 1 MB objects that inflate to 1 GiB (one with an honest gzip trailer, one whose
    trailer claims 100 bytes) between good objects in a moto bucket, read by a real agent
    process: its peak RSS stays under 450 MiB (issue 20 measured 2.1 GiB before), every good
    record reaches the manager, and each bomb is refused with its bucket/key and reason in the
    log and in `admin agents`, counted as failed and as too large."""
    bucket = new_bucket()
    day = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    expected: set[str] = set()
    bombs: list[str] = []
    for index in range(6):
        key = cloudtrail_key("111122223333", "us-east-1", day, unique=f"{index:02d}")
        if index in (1, 4):
            s3.put_object(Bucket=bucket, Key=key, Body=_bomb(forge_trailer=index == 4))
            bombs.append(key)
            continue
        good = [record() for _ in range(20)]
        s3.put_object(
            Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": good}).encode())
        )
        expected |= {r["eventID"] for r in good}
    agent = start_s3_agent(manager_process, tmp_path, "bomb-reader", bucket, aws_profile, workers=4)
    database = manager_process.home.path / "manager.db"
    assert agent.proc is not None
    try:
        wait_until(lambda: stored_ids(database) >= expected, 90, "the good records")
        status = wait_for_source_count(manager_process.home, "objects_refused_size", 2)
        peak = peak_rss_mib(agent.proc.pid)
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    assert peak < RSS_BOUND_MIB, f"agent peak RSS {peak:.0f} MiB"
    assert stored_ids(database) == expected
    assert int(status["objects_failed"]) == 2
    assert int(status["objects_refused_size"]) == 2
    problems = {p["where"]: p["reason"] for p in status["problems"]}
    log = agent.log
    for key in bombs:
        assert "gzip inflates past" in problems[f"{bucket}/{key}"]
        assert f"{bucket}/{key}: gzip inflates past" in log
