"""The durable spool: batches, sequences, limits, acks, checkpoints in the same transaction."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from trailwarden.agent.checkpoint import DONE, Checkpoints, ObjectTaken
from trailwarden.agent.spool import Spool
from trailwarden.common.errors import SpoolError, SpoolFullError
from trailwarden.common.model import SourceMeta

META = SourceMeta("src", "bucket", "AWSLogs/1/x.json.gz", "111122223333", "us-east-1", "prod")


def records(count: int, size: int = 10) -> list[bytes]:
    return [f'{{"n":{i},"p":"{"x" * size}"}}'.encode() for i in range(count)]


def test_put_splits_batches_and_pending_returns_them_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20, max_batch_records=3, max_batch_bytes=1 << 20)
    data = [*records(7), b'{"multi":"line\nrecord"}']
    sequences = spool.put(META, data)
    assert len(sequences) == 3 and sequences == sorted(sequences)
    batches = spool.pending()
    assert [b.sequence for b in batches] == sequences
    assert [r for b in batches for r in b.records] == data  # byte for byte, newlines kept
    assert batches[0].source == META
    assert [b.sequence for b in spool.pending(after_sequence=sequences[0], limit=1)] == [
        sequences[1]
    ]
    stats = spool.stats()
    assert stats.batches == 3 and stats.bytes == sum(len(r) for r in data)
    spool.close()


def test_batches_split_by_bytes_and_large_records_are_kept_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 30, max_batch_bytes=1000)
    big = b'{"big":"' + b"y" * 200_000 + b'"}'  # far over 64 KB: no record-size limit
    spool.put(META, [*records(5, 300), big])
    batches = spool.pending()
    assert all(sum(len(r) for r in b.records) <= 1000 or len(b.records) == 1 for b in batches)
    assert batches[-1].records == (big,)
    spool.close()


def test_sequences_keep_increasing_across_acks_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, 1 << 20)
    first = spool.put(META, records(2))
    spool.ack(first)
    spool.close()
    spool = Spool(path, 1 << 20)
    assert spool.stats().batches == 0 and spool.pending() == []
    second = spool.put(META, records(2))
    assert second[0] > first[-1]
    spool.close()
    spool = Spool(path, 1 << 20)  # unacked batches survive a restart
    assert [b.sequence for b in spool.pending()] == second
    assert spool.stats().bytes == sum(len(r) for r in records(2))
    spool.ack([999_999])  # unknown sequences are ignored
    assert spool.stats().batches == 1
    spool.close()


def test_full_spool_refuses_then_frees_space_on_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1000)
    oversized = records(1, 5000)
    assert spool.put(META, oversized)  # larger than the limit, but the spool is empty
    with pytest.raises(SpoolFullError):
        spool.put(META, records(1))
    stats = spool.stats()
    assert stats.paused and stats.full_waits == 1 and stats.bytes > 1000

    stop = threading.Event()
    assert not spool.wait_for_space(stop, timeout=0.1)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(spool.wait_for_space(stop, 5)))
    waiter.start()
    time.sleep(0.1)
    spool.ack(b.sequence for b in spool.pending())
    waiter.join(5)
    assert woke == [True]
    assert not spool.stats().paused
    assert spool.put(META, records(1))
    spool.close()


def test_wait_for_batches_wakes_on_put(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 20)
    assert not spool.wait_for_batches(0, 0.05)
    timer = threading.Timer(0.1, lambda: spool.put(META, records(1)))
    timer.start()
    started = time.monotonic()
    assert spool.wait_for_batches(0, 5)
    assert time.monotonic() - started < 4
    timer.join()
    spool.close()


def test_checkpoint_advances_in_the_same_transaction(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 100)
    checkpoints = Checkpoints(spool)
    taken = ObjectTaken("bucket", "P/", "P/2026/11/01/a.json.gz", DONE, watermark="P/2026/11/01/a")
    spool.put(META, records(1, 200), taken)
    assert checkpoints.taken_keys("bucket", "P/", "") == {"P/2026/11/01/a.json.gz"}
    state = checkpoints.stream("bucket", "P/")
    assert state is not None and state.watermark == "P/2026/11/01/a"

    refused = ObjectTaken("bucket", "P/", "P/2026/11/01/b.json.gz", DONE)
    with pytest.raises(SpoolFullError):
        spool.put(META, records(1), refused)
    assert "P/2026/11/01/b.json.gz" not in checkpoints.taken_keys("bucket", "P/", "")
    # Records all discarded: the checkpoint alone is recorded, even on a full spool.
    assert spool.put(META, [], refused) == []
    assert "P/2026/11/01/b.json.gz" in checkpoints.taken_keys("bucket", "P/", "")
    spool.close()


def test_disk_full_becomes_spool_error_and_nothing_is_half_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 30)
    spool.put(META, records(1))
    with spool.transaction() as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the "disk" is almost full
    before = spool.stats()
    taken = ObjectTaken("bucket", "P/", "P/k", DONE)
    with pytest.raises(SpoolError, match="full"):
        spool.put(META, records(50, 2000), taken)
    assert spool.stats() == before
    assert Checkpoints(spool).taken_keys("bucket", "P/", "") == set()
    assert len(spool.pending()) == 1
    spool.close()


def test_concurrent_puts_are_group_committed_each_with_its_checkpoint(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", 1 << 30)
    results: dict[int, list[int]] = {}

    def writer(worker: int) -> None:
        mine: list[int] = []
        for i in range(40):
            key = f"P/2026/11/01/w{worker}-{i:03d}"
            mine += spool.put(META, records(3), ObjectTaken("bucket", "P/", key, DONE))
        results[worker] = mine

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    every = [s for mine in results.values() for s in mine]
    assert len(every) == len(set(every)) == 320
    assert all(mine == sorted(mine) for mine in results.values())
    assert len(Checkpoints(spool).taken_keys("bucket", "P/", "")) == 320
    assert [b.sequence for b in spool.pending(0, 1000)] == sorted(every)
    assert spool.stats().batches == 320
    spool.close()
