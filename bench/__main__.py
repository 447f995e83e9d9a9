"""Run every benchmark in turn and print each one's figures, baseline and ratio.

    python -m bench [--full] [--only analysis scaling ...] [--list]

From the repository root. Each script runs as its own process (one at a time, so they do not
compete for the cores) with modest sizes that finish in a few minutes altogether; ``--full``
uses the sizes of the issue's targets (1M records, 1,000 agents: expect most of an hour on two
cores). Every script prints its figure, a baseline measured in the same run and the ratio; at
the end those lines are repeated together with the machine's load, as a summary. The exit code
is 1 when any script exited non-zero (a missed target or an error, the output says which).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

QUICK: dict[str, list[str]] = {
    "analysis": ["--records", "100000", "--runs", "3"],
    "ruleset_growth": ["--records", "50000", "--runs", "5"],
    "scaling": ["--records", "100000", "--runs", "3"],
    "worker_cost": ["--records", "50000"],
    "ingest": ["--records", "50000", "--runs", "2"],
    "collect": [],
    "store": ["--alerts", "100000", "--repeat", "5"],
    "fanout": ["--agents", "100", "--pushes", "3"],
    "memory": ["--records", "200000", "--agents", "200"],
    "latency": ["--objects", "20"],
    "sqs": ["--objects", "20", "--throughput-objects", "500", "--runs", "2"],
}
"""Script → arguments of the default run: every script, small sizes."""

FULL: dict[str, list[str]] = {
    "analysis": [],
    "ruleset_growth": [],
    "scaling": [],
    "worker_cost": [],
    "ingest": [],
    "collect": [],
    "store": [],
    "fanout": ["--agents", "100", "1000"],
    "memory": ["--records", "1000000"],
    "latency": ["--objects", "100"],
    "sqs": [],
}
"""Script → arguments of ``--full``: each script's own defaults, the issue's sizes."""

SUMMARY = re.compile(
    r"baseline|ratio|scaling|target|p99|MiB|alerts/s|records/s|µs/record|ok \(|SLOW", re.IGNORECASE
)
"""Lines of a script's output repeated in the summary."""
PROGRESS = re.compile(r"^\s+(run \d+:|[\d,]+ alerts:|\d+ s |timeline:)")
"""Per-run and progress lines, left out of the summary."""
TABLE_ROW = re.compile(r"^[\s\d.,]+$")


def run(name: str, arguments: list[str]) -> tuple[int, float, list[str]]:
    """Run ``bench/<name>.py``, echoing its output; (exit code, seconds, summary lines)."""
    command = [sys.executable, str(BENCH / f"{name}.py"), *arguments]
    shown = " ".join(["python", f"bench/{name}.py", *arguments])
    print(f"\n=== {shown}   ({load()})", flush=True)
    started = time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(
        command,
        cwd=BENCH.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        code = process.wait()
    seconds = time.monotonic() - started
    picked: list[str] = []
    previous_picked = False
    for line in lines:
        take = bool(SUMMARY.search(line)) and not PROGRESS.match(line)
        # Rows of numbers under a picked table header (fanout's table) go with it.
        take = take or (previous_picked and bool(TABLE_ROW.match(line)))
        if take:
            picked.append(line)
        previous_picked = take
    return code, seconds, picked


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}, {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (slow)")
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), help="run just these")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    args = parser.parse_args()
    plan = FULL if args.full else QUICK
    names = [name for name in plan if not args.only or name in args.only]
    if args.list:
        for name in names:
            print(" ".join(["python", f"bench/{name}.py", *plan[name]]))
        return 0
    results = {name: run(name, plan[name]) for name in names}
    print(f"\n=== summary ({load()})")
    for name, (code, seconds, lines) in results.items():
        status = "ok" if code == 0 else f"exit {code}: a target missed or an error, see above"
        print(f"{name} ({seconds:.0f} s, {status})")
        for line in lines:
            print(f"    {line}")
    return 0 if all(code == 0 for code, _, _ in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
