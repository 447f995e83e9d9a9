"""The link's bound on unacknowledged bytes slows sending down; it never stops it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.system import RunningManager, start_link
from tests.reliability.corpus import record
from trailwarden.agent import link as link_module
from trailwarden.agent.spool import Spool
from trailwarden.common.model import SourceMeta

SOURCE = SourceMeta("test", "trail", "AWSLogs/x.json.gz", "111122223333", "us-east-1")


def test_every_batch_arrives_when_each_is_larger_than_the_bound(
    running_manager: RunningManager,
    enrolled_agent: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(link_module, "MAX_UNACKED_BYTES", 1)  # one batch in flight at a time
    home = enrolled_agent("bounded")
    spool = Spool(tmp_path / "spool.db", 10 * 1024**2, max_batch_records=7)
    records = [record() for _ in range(60)]
    ids = [r["eventID"] for r in records]
    for start in range(0, len(records), 20):
        spool.put(SOURCE, [json.dumps(r).encode() for r in records[start : start + 20]])
    assert spool.stats().batches == 9
    link = start_link(home, running_manager.home.link_address, spool, heartbeat_seconds=1)
    try:
        deadline = time.monotonic() + 40
        while spool.stats().batches:
            assert time.monotonic() < deadline, "not every batch was acknowledged"
            time.sleep(0.05)
        assert link.client.acked_batches == 9
    finally:
        link.close()
        spool.close()
    db = sqlite3.connect(running_manager.home.path / "manager.db")
    try:
        stored = {row[0] for row in db.execute("SELECT event_key FROM seen_events")}
    finally:
        db.close()
    assert set(ids) <= stored
