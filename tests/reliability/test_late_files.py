"""CloudTrail files delivered later than the late window: collected by the reconcile, reported."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import AwsProfile, cloudtrail_key
from tests.reliability.corpus import envelope, record
from trailwarden.agent.collector import Collector
from trailwarden.agent.spool import Spool
from trailwarden.common.schema.sources import parse_sources

AREA = "Crash and fault"
ACCOUNT, REGION = "111122223333", "us-east-1"
NEWEST = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def _put(s3: Any, bucket: str, days_behind: int, name: str) -> tuple[str, set[str]]:
    records = [record(), record()]
    key = cloudtrail_key(ACCOUNT, REGION, NEWEST - timedelta(days=days_behind), unique=name)
    s3.put_object(Bucket=bucket, Key=key, Body=envelope(records))
    return key, {r["eventID"] for r in records}


def _drain(spool: Spool) -> Counter[str]:
    seen: Counter[str] = Counter()
    while batches := spool.pending(0, 1000):
        seen.update(str(json.loads(r)["eventID"]) for b in batches for r in b.records)
        spool.ack(b.sequence for b in batches)
    return seen


def _an_hour_passes(spool_path: Path) -> None:
    """Move the streams' last reconcile back two hours, as if the agent had run that long."""
    conn = sqlite3.connect(spool_path)
    try:
        with conn:
            conn.execute("UPDATE ct_streams SET reconciled_ms = reconciled_ms - 7200000")
    finally:
        conn.close()


def test_files_5_and_40_days_late_are_collected_by_the_reconcile_and_reported(
    s3: Any,
    new_bucket: Any,
    aws_profile: AwsProfile,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Objects put 5 and 40 days behind a stream's newest collected day, with late_window = 2d
    (the old fixed look-back): the usual pass collects only the one a day late; the next
    hourly reconcile (a complete listing from the first day) collects both, logs each as a
    warning with its bucket/key and lateness, and counts them in objects_late; another
    reconcile later takes nothing twice (the keys behind the window are kept, per day).
    Before, they were never collected and nothing said so."""
    bucket = new_bucket()
    delivered: Counter[str] = Counter()
    _, first = _put(s3, bucket, 50, "first-day")
    _, newest = _put(s3, bucket, 0, "newest")
    table = {
        "type": "cloudtrail",
        "bucket": bucket,
        "aws_profile": aws_profile.name,
        "service_endpoint": aws_profile.endpoint,
        "only_logs_after": (NEWEST - timedelta(days=50)).strftime("%Y-%m-%d"),
        "late_window": "2d",
        "reconcile_interval": "1h",
    }
    spool_path = tmp_path / "spool.db"
    spool = Spool(spool_path, 1 << 30)
    collector = Collector(parse_sources([table], "test"), spool, state_dir=tmp_path)
    assert collector.run_once().ok
    delivered += _drain(spool)
    assert set(delivered) == first | newest

    _, one_day = _put(s3, bucket, 1, "one-day-late")
    late_5, five = _put(s3, bucket, 5, "five-days-late")
    late_40, forty = _put(s3, bucket, 40, "forty-days-late")
    assert collector.run_once().ok  # no reconcile due yet: only the window is listed
    delivered += _drain(spool)
    assert set(delivered) == first | newest | one_day
    assert collector.status()[0].objects_late == 0

    _an_hour_passes(spool_path)
    with caplog.at_level(logging.WARNING):
        assert collector.run_once().ok
    delivered += _drain(spool)
    assert set(delivered) == first | newest | one_day | five | forty
    status = collector.status()[0]
    assert status.objects_late == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"s3://{bucket}/{late_5} arrived late" in w and " 5 days" in w for w in warnings)
    assert any(f"s3://{bucket}/{late_40} arrived late" in w and " 40 days" in w for w in warnings)

    _an_hour_passes(spool_path)
    assert collector.run_once().ok
    delivered += _drain(spool)
    spool.close()
    assert max(delivered.values()) == 1, "a file was taken twice"
    assert collector.status()[0].objects_late == 2
    conn = sqlite3.connect(spool_path)
    try:
        kept = conn.execute("SELECT SUM(count) FROM ct_days").fetchone()[0]
    finally:
        conn.close()
    assert kept == 3  # the 50-, 40- and 5-day-old keys, folded behind the window


def test_a_spool_from_before_the_late_window_is_not_read_again_on_upgrade(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, tmp_path: Path
) -> None:
    """A spool as the earlier agent left it (taken keys kept only 2 days back, no per-day
    sets, never reconciled), read by this agent with the default 7-day late window: the first
    passes, a reconcile among them, send no file a second time and report none as late; a file
    then delivered 1 day late (inside the kept range) is collected."""
    bucket = new_bucket()
    delivered: Counter[str] = Counter()
    written: set[str] = set()
    for days in range(10, -1, -1):
        written |= _put(s3, bucket, days, f"day-{days:02d}")[1]
    table = {
        "type": "cloudtrail",
        "bucket": bucket,
        "aws_profile": aws_profile.name,
        "service_endpoint": aws_profile.endpoint,
        "only_logs_after": (NEWEST - timedelta(days=10)).strftime("%Y-%m-%d"),
    }
    spool_path = tmp_path / "spool.db"
    spool = Spool(spool_path, 1 << 30)
    collector = Collector(parse_sources([table], "test"), spool, state_dir=tmp_path)
    assert collector.run_once().ok
    delivered += _drain(spool)
    assert set(delivered) == written
    old_window = f"{NEWEST - timedelta(days=2):%Y/%m/%d}/"
    conn = sqlite3.connect(spool_path)
    try:
        with conn:  # what the earlier agent kept: keys from watermark day - 2, nothing else
            conn.execute("DELETE FROM ct_days")
            conn.execute("UPDATE ct_streams SET kept_from = '', reconciled_ms = 0")
            conn.execute("DELETE FROM ct_objects WHERE key < prefix || ?", (old_window,))
    finally:
        conn.close()
    for _ in range(2):
        assert collector.run_once().ok
        _an_hour_passes(spool_path)
    delivered += _drain(spool)
    assert max(delivered.values()) == 1, "a file was sent again after the upgrade"
    assert collector.status()[0].objects_late == 0
    _, one_day = _put(s3, bucket, 1, "one-day-late")
    assert collector.run_once().ok
    delivered += _drain(spool)
    spool.close()
    assert set(delivered) == written | one_day
    assert max(delivered.values()) == 1
