"""Benchmark: what the default ruleset's growth costs per record (issue 17).

    python bench/ruleset_growth.py [--records 100000] [--runs 5] [--small 0350]

Times ``Analyzer.analyse`` (decode, rule tree, correlation, alerts) over the records of
``tests/files/datasets`` repeated to ``--records``, with two rulesets in the same process, in
interleaved rounds so that both see the same load: the default ruleset's first file alone
(``--small``, 0350: the ~34 detections of before) and the whole default ruleset (0350-0352,
~170 detections). Prints records per CPU second of this process (medians), the median of the
per-round ratios (whole / small: 1.00 means the larger ruleset costs nothing per record), the
rules each ruleset tries per event on average (from logtest's trace), and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.analysis import AGENT, DATASETS, SOURCE, load_records, measure
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths, load_ruleset
from trailwarden.manager.pipeline.workers import relax_gc


def tried_per_event(ruleset: Ruleset, records: list[tuple[dict[str, Any], bytes]]) -> float:
    """Rules tried per event (every check the walk made), averaged over ``records``."""
    analyzer = Analyzer(ruleset, "bench")
    tried = 0
    for record, raw in records:
        tried += len(analyzer.analyse(record, raw, SOURCE, AGENT, trace=True).trace)
    return tried / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small", default="0350", help="file-name prefix of the small ruleset")
    args = parser.parse_args()
    if args.runs < 1 or args.records < 1:
        parser.error("--runs and --records must be at least 1")

    base = load_records(DATASETS)
    records = base * -(-args.records // len(base))
    paths = default_ruleset_paths()
    small_paths = [path for path in paths if path.name.startswith(args.small)]
    if not small_paths:
        parser.error(f"--small {args.small}: no default ruleset file starts with it")
    small, whole = load_ruleset(small_paths), load_ruleset(paths)

    def analyse_with(ruleset: Ruleset) -> Callable[[], int]:
        def run() -> int:
            analyse = Analyzer(ruleset, "bench").analyse
            for record, raw in records:
                analyse(record, raw, SOURCE, AGENT)
            return len(records)

        return run

    print(
        f"{len(records)} records; small: {', '.join(p.name for p in small_paths)} "
        f"({len(small.rules)} rules); whole: {len(paths)} files ({len(whole.rules)} rules)"
    )
    print(
        f"rules tried per event: small {tried_per_event(small, base):.2f}, "
        f"whole {tried_per_event(whole, base):.2f}"
    )
    relax_gc()
    run_small, run_whole = analyse_with(small), analyse_with(whole)
    rounds = []
    loads = [os.getloadavg()[0]]
    for index in range(args.runs):
        # Alternate which goes first, so neither always runs on a warmer cache.
        first, second = (run_small, run_whole) if index % 2 == 0 else (run_whole, run_small)
        a, b = measure(first)[0], measure(second)[0]
        rounds.append((a, b) if index % 2 == 0 else (b, a))
        loads.append(os.getloadavg()[0])
    small_cpu = statistics.median(r[0] for r in rounds)
    whole_cpu = statistics.median(r[1] for r in rounds)
    ratio = statistics.median(r[1] / r[0] for r in rounds)
    print(f"small ruleset : {small_cpu:10,.0f} records/s per CPU second")
    print(f"whole ruleset : {whole_cpu:10,.0f} records/s per CPU second")
    print(
        f"ratio whole / small: {ratio:.2f} x (median of {args.runs} per-round ratios: "
        f"{', '.join(f'{r[1] / r[0]:.2f}' for r in rounds)})"
    )
    print(f"load average  : {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    main()
