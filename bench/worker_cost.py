"""Where an analysis worker's time goes per record: the steps of ``ProcessAnalysis``, split.

    python bench/worker_cost.py [--records 100000] [--batch 500]

``bench/scaling.py`` times the manager's analysis worker processes as a whole; this splits the
same path into its steps, run in this one process on the same dataset records, in 500-record
batches from one agent, timed in CPU time (the machine is shared):

* ``analyse_batch``: parse each record, the dedupe lookup against the store, decode, rules,
  correlation, alert building (what the worker's ``_worker_run`` calls);
* ``alert document``: each alert's JSON document rendered in the worker (``alert.document()``)
  so that the manager process, the single committer, never serialises an event;
* ``pickle`` / ``unpickle``: the batch sent to the worker and its result sent back (what
  ``ProcessPoolExecutor`` does with them), both ends counted here.

Baseline, same run: ``json.loads`` of the same records. Prints µs per record for each step,
records per CPU-second for the whole path (what one worker can do at best, before process
scheduling) and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import DATASET_SOURCE as SOURCE
from bench.harness import dataset_records
from trailwarden.common.model import AgentRef
from trailwarden.manager.config import load_manager_config
from trailwarden.manager.home import init_home
from trailwarden.manager.pipeline.analyzer import build_analyzer, build_seen_lookup
from trailwarden.manager.pipeline.batch_analysis import analyse_batch
from trailwarden.manager.pipeline.workers import relax_gc

AGENT = AgentRef("agent001", "bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    base = [r.raw for r in dataset_records()]
    records = (base * (args.records // len(base) + 1))[: args.records]
    batches = [tuple(records[i : i + args.batch]) for i in range(0, len(records), args.batch)]
    count = len(records)

    started = time.process_time()
    for raw in records:
        json.loads(raw)
    baseline = time.process_time() - started

    steps = dict.fromkeys(("analyse_batch", "alert document", "pickle", "unpickle"), 0.0)
    alerts = 0
    with tempfile.TemporaryDirectory(prefix="tw-bench-worker-") as tmp:
        home = Path(tmp) / "manager"
        init_home(
            home, ["localhost"], listen_host="127.0.0.1", link_port=0, enroll_port=0, console_port=0
        )
        config = load_manager_config(home)
        analyzer, seen = build_analyzer(config), build_seen_lookup(config)
        relax_gc()  # as the worker process does after loading its ruleset
        for batch in batches:
            t0 = time.process_time()
            result = analyse_batch(analyzer, seen, AGENT, SOURCE, batch)
            t1 = time.process_time()
            for alert in result.alerts:
                alert.document()
            t2 = time.process_time()
            sent = pickle.dumps((AGENT, SOURCE, batch))
            back = pickle.dumps(result)
            t3 = time.process_time()
            pickle.loads(sent)  # noqa: S301 - our own bytes, as the worker pool does
            pickle.loads(back)  # noqa: S301
            t4 = time.process_time()
            steps["analyse_batch"] += t1 - t0
            steps["alert document"] += t2 - t1
            steps["pickle"] += t3 - t2
            steps["unpickle"] += t4 - t3
            alerts += len(result.alerts)
    total = sum(steps.values())
    print(f"{count:,} records in batches of {args.batch}, {alerts:,} alerts (CPU time)")
    print(
        f"baseline json.loads   : {baseline / count * 1e6:6.1f} µs/record  "
        f"{count / baseline:>10,.0f} records/s"
    )
    for name, seconds in steps.items():
        print(f"  {name:<20}: {seconds / count * 1e6:6.1f} µs/record")
    print(
        f"worker path, total    : {total / count * 1e6:6.1f} µs/record  "
        f"{count / total:>10,.0f} records/s  ratio {baseline / total:.2f} x baseline"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
