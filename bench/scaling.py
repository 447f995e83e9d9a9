"""Benchmark: analysis throughput with 1 and 2 worker processes (the multi-core manager).

    python bench/scaling.py [--records 100000] [--agents 8] [--batch 500] [--runs 3]

Feeds the shared datasets' records, as batches from several agents at once, into the
manager's analysis stage as the links do (`ProcessAnalysis.submit`: parse, dedupe lookup,
decode, rules, correlation, alert documents in the worker; results pickled back): one thread
per agent, each sending its batches in order and waiting for each result, as an agent's link
does; with 1 and then 2 worker processes. Prints records/s for each (median of --runs), the
same-run baseline of plain json.loads of the same records in one process, and the
2-worker/1-worker scaling ratio.
The store commit is not included (bench/store.py measures it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import DATASET_SOURCE as SOURCE
from bench.harness import dataset_records
from trailwarden.common.model import AgentRef
from trailwarden.manager.home import init_home
from trailwarden.manager.pipeline.workers import ProcessAnalysis


def baseline(records: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in records:
        json.loads(raw)
    return len(records) / (time.perf_counter() - start)


def run_pool(
    home: Path, workers: int, batches: list[tuple[AgentRef, tuple[bytes, ...]]], runs: int
) -> float:
    pool = ProcessAnalysis(home, workers)
    pool.warm_up()
    by_agent: dict[AgentRef, list[tuple[bytes, ...]]] = {}
    for agent, records in batches:
        by_agent.setdefault(agent, []).append(records)

    def link(agent: AgentRef) -> None:
        for records in by_agent[agent]:
            pool.submit(agent, SOURCE, records).result()

    rates = []
    try:
        for _ in range(runs):
            total = sum(len(b) for _, b in batches)
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=len(by_agent)) as threads:
                list(threads.map(link, by_agent))
            rates.append(total / (time.perf_counter() - start))
    finally:
        pool.close()
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = [r.raw for r in dataset_records()]
    records = (base * (args.records // len(base) + 1))[: args.records]
    agents = [AgentRef(f"agent{i:03d}", f"bench-{i}") for i in range(args.agents)]
    batches = [
        (agents[(i // args.batch) % len(agents)], tuple(records[i : i + args.batch]))
        for i in range(0, len(records), args.batch)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "manager"
        init_home(
            home, ["localhost"], listen_host="127.0.0.1", link_port=0, enroll_port=0, console_port=0
        )
        json_rate = statistics.median(baseline(records) for _ in range(args.runs))
        one = run_pool(home, 1, batches, args.runs)
        two = run_pool(home, 2, batches, args.runs)
    print(
        f"{len(records):,} records in {len(batches)} batches from {len(agents)} agents, "
        f"median of {args.runs}"
    )
    print(f"baseline json.loads (1 process): {json_rate:>10,.0f} records/s")
    print(
        f"analysis, 1 worker             : {one:>10,.0f} records/s  "
        f"ratio {one / json_rate:.2f} x baseline"
    )
    print(
        f"analysis, 2 workers            : {two:>10,.0f} records/s  "
        f"ratio {two / json_rate:.2f} x baseline"
    )
    print(f"scaling 2 workers / 1 worker   : {two / one:.2f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
