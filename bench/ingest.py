"""Ingest benchmark: spooled records → link → manager (analysis workers, store, alerts file) → ack.

    python bench/ingest.py [--records 100000] [--agents 1] [--analysis-workers 0] [--runs 3]

What one agent's backfill costs the manager once the records are collected: a real manager
(``trailwarden manager run``, its analysis worker processes, its SQLite store and alerts.json)
and ``--agents`` enrolled agents, each a real ``LinkClient`` (mutual TLS gRPC) sending what its
durable spool holds, ``--records`` in all, split evenly. The clock runs from the links' start to
the last acknowledgement (every record committed); the manager's database must then hold every
eventID. Records are the shared datasets' records with unique eventIDs.

Baseline, same run: ``json.loads`` of the same records in this process, the least any consumer
of them pays. Prints records/s (median of ``--runs``, a fresh manager each), the baseline and
the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import DATASET_SOURCE as SOURCE
from bench.harness import count_rows, dataset_records, enroll_agent, init_manager, machine_load
from tests.fixtures.system import start_link
from trailwarden.agent.spool import Spool

OBJECT_RECORDS = 500
"""Records per spooled object (one batch each), as a large CloudTrail object gives."""


def unique_records(count: int) -> list[bytes]:
    base = [r.record for r in dataset_records()]
    out = []
    for index in range(count):
        record = dict(base[index % len(base)])
        record["eventID"] = str(uuid.uuid4())
        out.append(json.dumps(record, separators=(",", ":")).encode())
    return out


def one_run(root: Path, records: list[bytes], agents: int, workers: int) -> float:
    manager = init_manager(root / "manager", workers)
    manager.start()
    spools = []
    homes = []
    share = -(-len(records) // agents)
    for index in range(agents):
        homes.append(enroll_agent(manager, root / f"agent{index}", f"bench-{index}"))
        spool = Spool(root / f"spool{index}.db", 4 * 1024**3)
        mine = records[index * share : (index + 1) * share]
        for start in range(0, len(mine), OBJECT_RECORDS):
            spool.put(SOURCE, mine[start : start + OBJECT_RECORDS])
        spools.append(spool)
    links = []
    try:
        started = time.perf_counter()
        links = [
            start_link(home, f"127.0.0.1:{manager.link_port}", spool)
            for home, spool in zip(homes, spools, strict=True)
        ]
        while any(spool.stats().batches for spool in spools):
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        for link in links:
            link.close()
        for spool in spools:
            spool.close()
        manager.stop()
    stored = count_rows(manager.db_path, "SELECT count(*) FROM seen_events")
    if stored != len(records):
        raise SystemExit(f"the manager stored {stored:,} of {len(records):,} records")
    return len(records) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--analysis-workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    records = unique_records(args.records)
    print(
        f"ingest: {len(records):,} records from {args.agents} agent(s), "
        f"analysis workers {args.analysis_workers or 'one per core'} ({machine_load()})"
    )
    rates, baselines = [], []
    for run in range(args.runs):
        started = time.perf_counter()
        for raw in records:
            json.loads(raw)
        baselines.append(len(records) / (time.perf_counter() - started))
        with tempfile.TemporaryDirectory(prefix="tw-bench-ingest-") as tmp:
            rates.append(one_run(Path(tmp), records, args.agents, args.analysis_workers))
        print(f"  run {run + 1}: {rates[-1]:,.0f} records/s")
    rate, baseline = statistics.median(rates), statistics.median(baselines)
    print(f"baseline json.loads      : {baseline:>10,.0f} records/s")
    print(f"spool → manager → ack    : {rate:>10,.0f} records/s  ratio {rate / baseline:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
