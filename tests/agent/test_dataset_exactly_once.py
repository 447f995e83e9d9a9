"""Every record of a real CloudTrail dataset lands in the spool exactly once, also across SIGKILL.

The invictus-ir dataset (2,900 events in 55 files) is gzipped into a moto bucket in CloudTrail
layout. The test plays the manager: it reads and acks batches while the collector runs.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.agent.helpers import drain, event_ids, run_pass
from tests.fixtures.aws import AwsProfile, fill_bucket_from_dataset
from trailwarden.agent.spool import Spool

SOURCE = {
    "type": "cloudtrail",
    "aws_profile": "test",
    "only_logs_after": "2023-07-01",
    "workers": 4,
}

DRIVER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from trailwarden.agent.collector import Collector
    from trailwarden.common.schema.sources import parse_sources
    from trailwarden.agent.spool import Spool

    table, spool_path, limit = json.loads(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    spool = Spool(spool_path, limit)
    collector = Collector(parse_sources([table], "driver"), spool, state_dir=spool_path.parent)
    result = collector.run_once()
    spool.close()
    print(json.dumps({"ok": result.ok, "objects": result.objects_done}))
    """
)


def test_dataset_lands_exactly_once(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    expected = fill_bucket_from_dataset(s3, bucket)
    assert len(expected) == 2900
    table = SOURCE | {"bucket": bucket, "service_endpoint": aws_profile.endpoint}
    _, result = run_pass(tmp_path, spool, table)
    ids = event_ids(drain(spool))
    assert result.ok and result.objects_done == 55
    assert len(ids) == 2900 and set(ids) == expected
    # A second pass (and a restarted collector) sends nothing again.
    _, again = run_pass(tmp_path, spool, table)
    assert again.objects_done == 0 and drain(spool) == []


def _start(table: dict[str, Any], spool_path: Path, limit: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(table), str(spool_path), str(limit)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _batch_count(spool_path: Path) -> int:
    if not spool_path.exists():
        return 0
    conn = sqlite3.connect(spool_path, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM spool_batches").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


def test_dataset_exactly_once_across_sigkill(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, tmp_path: Path
) -> None:
    bucket = new_bucket()
    expected = fill_bucket_from_dataset(s3, bucket)
    table = SOURCE | {"bucket": bucket, "service_endpoint": aws_profile.endpoint, "workers": 2}
    spool_path = tmp_path / "agent" / "spool.db"
    spool_path.parent.mkdir()

    first = _start(table, spool_path, 1 << 30)
    deadline = time.monotonic() + 60
    while _batch_count(spool_path) < 4:  # some objects spooled, most not yet
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL
    killed_at = _batch_count(spool_path)

    second = _start(table, spool_path, 1 << 30)
    out, err = second.communicate(timeout=90)
    assert second.returncode == 0, err
    report = json.loads(out)
    assert report["ok"] is True
    assert 0 < report["objects"] < 55  # the restart took only what the killed run had not

    spool = Spool(spool_path, 1 << 30)
    counts = Counter(event_ids(drain(spool)))
    spool.close()
    assert killed_at < 55
    assert set(counts) == expected
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1][:5]
