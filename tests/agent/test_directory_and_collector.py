"""The directory source and the collector's scheduling and live reconfiguration."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest

from tests.agent.helpers import drain, event_ids, sources
from tests.fixtures.aws import make_record
from trailwarden.agent.collector import Collector
from trailwarden.agent.spool import Spool


def write_layouts(folder: Path) -> list[str]:
    """The same dataset shapes the issue lists: Records envelope, array, JSON lines, gzipped."""
    folder.mkdir(parents=True, exist_ok=True)
    ids: list[str] = []

    def recs(n: int) -> list[dict[str, object]]:
        out = [make_record() for _ in range(n)]
        ids.extend(str(r["eventID"]) for r in out)
        return out

    (folder / "envelope.json").write_text(json.dumps({"Records": recs(3)}))
    (folder / "array.json").write_text(json.dumps(recs(2)))
    (folder / "lines.json").write_text("\n".join(json.dumps(r) for r in recs(2)) + "\n")
    sub = folder / "2026" / "11"
    sub.mkdir(parents=True)
    (sub / "zipped.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs(2)}).encode()))
    (folder / "notes.txt").write_text("not a log")
    return ids


def directory_source(folder: Path, **extra: object) -> dict[str, object]:
    return {"type": "directory", "path": str(folder), "name": "local", **extra}


def test_directory_reads_every_layout_once_and_rereads_changed_files(
    tmp_path: Path, spool: Spool
) -> None:
    folder = tmp_path / "logs"
    ids = write_layouts(folder)
    collector = Collector(sources(directory_source(folder)), spool, state_dir=tmp_path)
    result = collector.run_once()
    batches = drain(spool)
    assert result.ok and result.objects_done == 4
    assert sorted(event_ids(batches)) == sorted(ids)
    assert {b.source.key for b in batches} >= {str(folder / "envelope.json")}

    assert collector.run_once().objects_done == 0  # rerun: nothing resent
    fresh = Collector(sources(directory_source(folder)), spool, state_dir=tmp_path)
    assert fresh.run_once().objects_done == 0  # nor after a restart

    changed = make_record()
    (folder / "array.json").write_text(json.dumps([changed]))
    stat = (folder / "array.json").stat()
    os.utime(folder / "array.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert fresh.run_once().objects_done == 1
    assert event_ids(drain(spool)) == [changed["eventID"]]


def test_directory_glob_and_corrupt_file(tmp_path: Path, spool: Spool) -> None:
    folder = tmp_path / "logs"
    write_layouts(folder)
    (folder / "2026" / "11" / "broken.json.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    collector = Collector(
        sources(directory_source(folder, glob="2026/**/*.json.gz")), spool, state_dir=tmp_path
    )
    result = collector.run_once()
    assert result.ok and result.objects_done == 1 and result.objects_failed == 1
    assert len(event_ids(drain(spool))) == 2
    problem = collector.status()[0].problems[0]
    assert problem.where.endswith("broken.json.gz") and "gzip" in problem.reason


def test_missing_directory_fails_the_source(tmp_path: Path, spool: Spool) -> None:
    collector = Collector(
        sources(directory_source(tmp_path / "nowhere")), spool, state_dir=tmp_path
    )
    result = collector.run_once()
    assert result.failed_sources == ("local",) and "not a directory" in result.errors[0]
    status = collector.status()[0]
    assert status.state == "failed" and "nowhere" in status.last_error


def test_background_schedule_and_live_reconfigure(tmp_path: Path, spool: Spool) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    ids_one, ids_two = write_layouts(one), write_layouts(two)
    collector = Collector(
        sources(directory_source(one, interval="100ms")), spool, state_dir=tmp_path
    )
    collector.start()
    try:
        deadline = time.monotonic() + 20
        while len(received := event_ids(spool.pending(0, 1000))) < len(ids_one):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sorted(received) == sorted(ids_one)

        # Add a source, change the first (same folder: its checkpoints are kept).
        collector.reconfigure(
            sources(
                directory_source(one, interval="200ms"),
                directory_source(two, name="second", interval="100ms"),
            )
        )
        while len(received := event_ids(spool.pending(0, 1000))) < len(ids_one) + len(ids_two):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # several more passes of both sources
        assert sorted(event_ids(spool.pending(0, 1000))) == sorted(ids_one + ids_two)
        assert {s.name for s in collector.status()} == {"local", "second"}

        collector.reconfigure(sources(directory_source(two, name="second")))
        assert [s.name for s in collector.status()] == ["second"]
    finally:
        collector.stop()


@pytest.mark.parametrize("budget", ["MAX_IN_FLIGHT_BYTES", "MAX_PARSED_BYTES"])
def test_objects_larger_than_the_byte_budget_run_one_at_a_time(
    tmp_path: Path, spool: Spool, monkeypatch: pytest.MonkeyPatch, budget: str
) -> None:
    monkeypatch.setattr(f"trailwarden.agent.collector.{budget}", 1)
    folder = tmp_path / "logs"
    ids = write_layouts(folder)
    collector = Collector(sources(directory_source(folder, workers=4)), spool, state_dir=tmp_path)
    result = collector.run_once()
    assert result.ok and result.objects_done == 4
    assert sorted(event_ids(drain(spool))) == sorted(ids)
