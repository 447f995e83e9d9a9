"""Benchmark: decode + rules + correlation over the shared CloudTrail datasets.

    /work/venv/bin/python bench/analysis.py [--records 200000] [--runs 5] [--sigma DIR ...]
                                            [--extra-rules 120] [--extra-apis frequent]

Loads every record of ``tests/files/datasets`` (Records objects, JSON arrays, JSON lines), repeats
them to at least ``--records``, and times, in the same process and on the same records:

* baseline: plain ``json.loads`` of each record's raw bytes (what any consumer must pay);
* analyse: ``Analyzer.analyse`` with the default ruleset (decode, rule tree, correlation,
  alert construction; records arrive parsed, as they do in the manager);
* analyse XML+Sigma: the same with the full ruleset, the default XML rules plus every Sigma
  file of ``--sigma`` (default: the SigmaHQ CloudTrail folder committed under
  tests/files/sigma/sigmahq; files pySigma itself refuses are left out and named), with each
  Sigma rule filed under the eventName/eventSource values it needs; its ratio to ``analyse``
  in the same round says what the larger ruleset costs per record;
* analyse XML+Sigma+N: the full ruleset plus ``--extra-rules`` generated detections shaped
  like the real ones (``bench/synthetic_rules.py``, one for each of the N APIs most frequent in
  the datasets: a pessimistic stand-in for the 0351/0352 detections of issue 17, as every event
  then meets one more rule; ``--extra-apis unseen`` files them under APIs the datasets never
  call, which measures what the larger index alone costs); its ratio to
  ``analyse XML+Sigma`` in the same round says whether a ruleset of ~150 detections is slower
  per record than one of ~34;
* parse_record+analyse: the worker's parse (orjson, with the strict fallback) and analyse,
  i.e. the manager's per-record CPU cost before rendering the alert and the store.

All three run with the garbage-collector settings of an analysis worker process
(``manager.workers.relax_gc``), as that is where analysis runs.

Prints records per CPU second of this process (and per wall second), medians over ``--runs``
interleaved rounds, and the ratio to the baseline (median of the per-round ratios). The store is not
included: it belongs to the manager's store benchmark.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.synthetic_rules import frequent_apis, synthetic_rules
from trailwarden.common.errors import RulesetError
from trailwarden.common.logfile import read_file
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths, load_ruleset
from trailwarden.manager.analysis.rules.matcher import RuleTree
from trailwarden.manager.analysis.ruleset import load_rules
from trailwarden.manager.pipeline.batch_analysis import parse_record
from trailwarden.manager.pipeline.workers import relax_gc

DATASETS = Path(__file__).resolve().parents[1] / "tests" / "files" / "datasets"
SIGMAHQ = Path(__file__).resolve().parents[1] / "tests" / "files" / "sigma" / "sigmahq"
SOURCE = SourceMeta("bench", "bench-bucket", "AWSLogs/123456789012/CloudTrail/us-east-1/x.json.gz")
AGENT = AgentRef("001", "bench")


def load_records(root: Path) -> list[tuple[dict[str, Any], bytes]]:
    files = sorted(root.rglob("*.json.gz"))
    if not files:
        raise SystemExit(f"bench/analysis.py: no *.json.gz dataset files under {root}")
    out: list[tuple[dict[str, Any], bytes]] = []
    for path in files:
        out.extend((item.record, item.raw) for item in read_file(str(path)).records)
    return out


def loadable_sigma(folders: list[Path]) -> list[Path]:
    """The Sigma files that load on their own (pySigma refuses a few SigmaHQ files)."""
    out = []
    for folder in folders:
        for path in sorted(folder.glob("*.yml")):
            try:
                load_rules([path])
            except RulesetError as exc:
                print(f"left out {path.name}: {exc.errors[0].reason[:100]}")
                continue
            out.append(path)
    return out


def measure(fn: Callable[[], int]) -> tuple[float, float]:
    """(records per CPU second, records per wall second) of one run of ``fn``.

    CPU time of this process is what "records/s on one core" means on a shared machine: wall
    time also counts the time other processes held the core.
    """
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    count = fn()
    return count / (time.process_time() - cpu), count / (time.perf_counter() - wall)


def detection_count(ruleset: Ruleset) -> int:
    """XML rules that are detections: level 5 and up, not Wazuh's base rules (802xx)."""
    return sum(
        1 for r in ruleset.rules.values() if r.id.isdigit() and r.level >= 5 and int(r.id) >= 80500
    )


def largest_bucket(ruleset: Ruleset) -> int:
    """The most children of 80202 any event is tried against."""
    return RuleTree(ruleset).candidates_below("80202").largest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--sigma", type=Path, nargs="*", default=[SIGMAHQ])
    parser.add_argument(
        "--extra-rules",
        type=int,
        default=120,
        help="generated detections added to the full ruleset for the larger-ruleset run (1-1000)",
    )
    parser.add_argument(
        "--extra-apis",
        choices=("frequent", "unseen"),
        default="frequent",
        help="the generated detections watch the datasets' most frequent APIs, or unseen ones",
    )
    args = parser.parse_args()
    if not 1 <= args.extra_rules <= 1000:
        parser.error("--extra-rules must be 1..1000")

    base = load_records(args.datasets)
    repeat = -(-args.records // len(base))
    records = base * repeat
    raws = [raw for _, raw in records]
    ruleset = load_ruleset(default_ruleset_paths())
    sigma = loadable_sigma(args.sigma)
    full = load_rules([*default_ruleset_paths(), *sigma])
    extra_dir = tempfile.TemporaryDirectory(prefix="bench-rules-")
    extra_file = Path(extra_dir.name) / "0360-bench-synthetic_rules.xml"
    apis = frequent_apis((record for record, _ in base), args.extra_rules)
    if args.extra_apis == "unseen":
        apis = [(source, f"Unseen{name}") for source, name in apis]
    extra_file.write_text(synthetic_rules(apis, args.extra_rules))
    larger = load_rules([*default_ruleset_paths(), extra_file, *sigma])
    extra_dir.cleanup()
    print(
        f"{len(base)} dataset records x {repeat} = {len(records)} records, "
        f"{len(ruleset.rules)} XML rules; full ruleset {len(full.rules)} rules "
        f"({len(full.detections)} Sigma, "
        f"{sum(d.index_field is None for d in full.detections)} of them tried on every event), "
        f"median of {args.runs} runs"
    )
    print(
        f"larger ruleset: {detection_count(full)} -> {detection_count(larger)} XML detections "
        f"(+{args.extra_rules} generated for {len(apis)} {args.extra_apis} APIs); most "
        f"candidates an event meets under 80202: {largest_bucket(full)} -> "
        f"{largest_bucket(larger)}"
    )

    def baseline() -> int:
        loads = json.loads
        for raw in raws:
            loads(raw)
        return len(raws)

    def analyse() -> int:
        analyzer = Analyzer(ruleset, "bench")
        run = analyzer.analyse
        alerts = 0
        for record, raw in records:
            if run(record, raw, SOURCE, AGENT).alert is not None:
                alerts += 1
        assert alerts == len(records), "every CloudTrail record should alert (80202 or deeper)"
        return len(records)

    def analyse_with(ruleset: Ruleset) -> Callable[[], int]:
        def analyse_full() -> int:
            analyzer = Analyzer(ruleset, "bench")
            run = analyzer.analyse
            alerts = 0
            for record, raw in records:
                alerts += len(run(record, raw, SOURCE, AGENT).alerts)
            assert alerts > len(records), "the Sigma rules should add alerts to the XML ones"
            return len(records)

        return analyse_full

    analyse_full, analyse_larger = analyse_with(full), analyse_with(larger)

    def parse_and_analyse() -> int:
        analyzer = Analyzer(ruleset, "bench")
        run = analyzer.analyse
        for raw in raws:
            run(parse_record(raw), raw, SOURCE, AGENT)
        return len(raws)

    relax_gc()  # the collector settings of an analysis worker process

    # Interleaved rounds: on a shared machine each round's three runs see similar load, so the
    # per-round ratios are steadier than ratios of separately taken medians.
    rounds = []
    for _ in range(args.runs):
        rounds.append(
            (
                measure(baseline),
                measure(analyse),
                measure(parse_and_analyse),
                measure(analyse_full),
                measure(analyse_larger),
            )
        )
    labels = (
        "baseline json.loads",
        "analyse",
        "parse_record+analyse",
        "analyse XML+Sigma",
        f"analyse XML+Sigma+{args.extra_rules}",
    )
    for index, label in enumerate(labels):
        cpu = statistics.median(r[index][0] for r in rounds)
        wall = statistics.median(r[index][1] for r in rounds)
        line = f"{label:24s}: {cpu:10,.0f} records/s per CPU second ({wall:,.0f} wall)"
        if index:
            ratio = statistics.median(r[index][0] / r[0][0] for r in rounds)
            line += f"  ratio {ratio:.2f} x baseline"
        print(line)
    full_vs_xml = statistics.median(r[3][0] / r[1][0] for r in rounds)
    print(f"XML+Sigma vs XML only (same rounds): {full_vs_xml:.2f} x the records/s")
    larger_vs_full = statistics.median(r[4][0] / r[3][0] for r in rounds)
    print(
        f"XML+Sigma with {detection_count(larger)} vs {detection_count(full)} XML detections "
        f"(same rounds): {larger_vs_full:.2f} x the records/s"
    )
    print("(medians over interleaved rounds; ratio: median of per-round ratios, CPU time)")


if __name__ == "__main__":
    main()
