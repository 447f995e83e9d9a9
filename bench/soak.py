"""Soak: an agent and a manager under continuous ingest, killed at random, with S3 faults.

    python bench/soak.py [--minutes 60] [--kill-every 180] [--object-every 2] [--events 150]

From the repository root; not part of CI (it runs for as long as it is told). For ``--minutes``
a writer thread puts a generated CloudTrail object (``common/generator``, background calls and
detection scenarios, fresh eventIDs) into a moto bucket every ``--object-every`` seconds, dated
now, as CloudTrail would; the agent (``trailwarden agent run``) reads the bucket through the
fault-injecting proxy of ``tests/fixtures/faults.py``, which is armed with a random fault
(throttling, 500s, resets, stalls, cut bodies) every few seconds; the agent or the manager
(``trailwarden manager run``) is SIGKILLed at random about every ``--kill-every`` seconds and
restarted. VmRSS of the agent and of the manager's process tree is sampled every
``--sample-every`` seconds.

At the end the writer stops, the faults stop, and both sides run until the manager has stored
every eventID written (or ``--drain-timeout`` passes). Checked and printed: every eventID stored
exactly once, every alert stored once per (event, rule), no line of alerts.json (and its
rotated files) twice, no torn line; and the RSS of each side after warm-up (the first
``--warmup`` fraction of the run): the median of the first third of the samples after warm-up
is the baseline, the median of the last third the figure, and their ratio the growth.
Exit code 0 when every check holds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    AWS_PROFILE,
    Manager,
    count_rows,
    enroll_agent,
    init_manager,
    machine_load,
    memory,
    s3_client,
    start_agent,
    start_moto,
    stop_process,
    tree_rss,
    use_aws_profile,
)
from tests.fixtures.faults import KINDS, FaultProxy
from trailwarden.common.generator.generate import generate_records

ACCOUNT, REGION = "111122223333", "us-east-1"
BUCKET = "soak-trail"


@dataclass
class Written:
    """What the writer put in the bucket (eventIDs, objects), under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    event_ids: set[str] = field(default_factory=set)
    objects: int = 0


@dataclass
class Samples:
    """(seconds since start, agent VmRSS MiB, manager tree VmRSS MiB)."""

    rows: list[tuple[float, float, float]] = field(default_factory=list)


def _key(moment: datetime, number: int) -> str:
    name = f"{ACCOUNT}_CloudTrail_{REGION}_{moment:%Y%m%dT%H%MZ}_soak{number:08d}.json.gz"
    return f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{moment:%Y/%m/%d}/{name}"


def writer(s3: object, events: int, every: float, stop: threading.Event, out: Written) -> None:
    number = 0
    while not stop.is_set():
        now = datetime.now(UTC).replace(microsecond=0)
        records = generate_records(
            accounts=[ACCOUNT],
            regions=[REGION],
            events=events,
            scenarios="all" if number % 10 == 0 else "none",
            seed=number,
            start=now - timedelta(seconds=300),
            duration=300,
        )
        body = gzip.compress(json.dumps({"Records": records}).encode(), 6)
        s3.put_object(Bucket=BUCKET, Key=_key(now, number), Body=body)  # type: ignore[attr-defined]
        with out.lock:
            out.event_ids.update(str(r["eventID"]) for r in records)
            out.objects += 1
        number += 1
        stop.wait(every)


def faults(
    proxy: FaultProxy, rng: random.Random, stop: threading.Event, armed: Counter[str]
) -> None:
    while not stop.wait(rng.uniform(2, 8)):
        kind = rng.choice(KINDS)
        proxy.inject(
            kind,
            times=rng.randint(1, 3),
            path_contains="/AWSLogs/" if rng.random() < 0.7 else "",
            delay=1.5 if kind == "slow" else 0.0,
        )
        armed[kind] += 1


def _stored_once(db: Path) -> tuple[int, int]:
    """(rows in the dedupe table, distinct eventIDs there)."""
    return (
        count_rows(db, "SELECT COUNT(*) FROM seen_events"),
        count_rows(db, "SELECT COUNT(DISTINCT event_key) FROM seen_events"),
    )


def _stored_ids(db: Path) -> set[str]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0] for row in conn.execute("SELECT event_key FROM seen_events")}
    finally:
        conn.close()


def _alerts_lines(home: Path) -> tuple[Counter[str], Counter[tuple[str, str]], int]:
    """Every alerts.json line (live and rotated) -> how often; (rule, eventID) -> how often
    (a replayed alert may differ in its timestamp); and torn (non-JSON) lines."""
    lines: Counter[str] = Counter()
    keys: Counter[tuple[str, str]] = Counter()
    torn = 0
    for path in sorted((home / "alerts").rglob("*.json")):
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                torn += 1
                continue
            lines[line.decode(errors="replace")] += 1
            event_id = (doc.get("data", {}).get("aws") or {}).get("eventID") or doc.get("id")
            keys[(str(doc.get("rule", {}).get("id")), str(event_id))] += 1
    return lines, keys, torn


def _growth(values: list[float]) -> tuple[float, float, float]:
    third = max(1, len(values) // 3)
    base = statistics.median(values[:third])
    last = statistics.median(values[-third:])
    return base, last, (last / base if base else float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to ingest (60)")
    parser.add_argument(
        "--kill-every", type=float, default=180.0, help="mean seconds between kills"
    )
    parser.add_argument("--object-every", type=float, default=2.0, help="seconds between objects")
    parser.add_argument("--events", type=int, default=150, help="records per object")
    parser.add_argument("--sample-every", type=float, default=10.0, help="RSS sample period, s")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run ignored")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to catch up")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    for name, value, low, high in (
        ("--minutes", args.minutes, 1.0, 24 * 60.0),
        ("--kill-every", args.kill_every, 10.0, 3600.0),
        ("--object-every", args.object_every, 0.1, 600.0),
        ("--events", args.events, 1, 100_000),
        ("--sample-every", args.sample_every, 1.0, 600.0),
        ("--warmup", args.warmup, 0.0, 0.9),
    ):
        if not low <= value <= high:
            parser.error(f"{name} {value} is outside {low}-{high}")
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="trailwarden-soak-"))
    print(f"soak: {args.minutes:g} min in {root}; {machine_load()}", flush=True)
    moto = start_moto()
    proxy = FaultProxy(moto.url)
    proxy.start()
    use_aws_profile(root / "aws", moto.url)
    s3 = s3_client(moto.url)
    s3.create_bucket(Bucket=BUCKET)
    manager: Manager = init_manager(root / "manager", analysis_workers=1)
    manager.start()
    source = (
        "\n[[sources]]\n"
        'type = "cloudtrail"\nname = "soak"\n'
        f'bucket = "{BUCKET}"\naws_profile = "{AWS_PROFILE}"\n'
        f'service_endpoint = "{proxy.url}"\n'
        f'only_logs_after = "{datetime.now(UTC) - timedelta(days=1):%Y-%m-%d}"\n'
        'interval = "5s"\nworkers = 2\n'
    )
    home = enroll_agent(manager, root / "agent", "soak-agent", source)
    agent = start_agent(home)
    written = Written()
    stop_writing, stop_faults = threading.Event(), threading.Event()
    armed: Counter[str] = Counter()
    threads = [
        threading.Thread(
            target=writer, args=(s3, args.events, args.object_every, stop_writing, written)
        ),
        threading.Thread(target=faults, args=(proxy, rng, stop_faults, armed)),
    ]
    for thread in threads:
        thread.daemon = True
        thread.start()
    samples = Samples()
    kills: Counter[str] = Counter()
    started = time.monotonic()
    end = started + args.minutes * 60
    next_kill = started + rng.uniform(0.5, 1.5) * args.kill_every
    next_sample = started
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample:
                assert manager.process is not None
                samples.rows.append(
                    (now - started, memory(agent.pid).rss, tree_rss(manager.process.pid))
                )
                next_sample = now + args.sample_every
            if now >= next_kill:
                side = rng.choice(("agent", "manager"))
                kills[side] += 1
                print(f"  {now - started:7.0f} s  kill -9 {side}", flush=True)
                if side == "agent":
                    agent.send_signal(signal.SIGKILL)
                    agent.wait(10)
                    time.sleep(rng.uniform(0.5, 3))
                    agent = start_agent(home)
                else:
                    assert manager.process is not None
                    manager.process.send_signal(signal.SIGKILL)
                    manager.process.wait(10)
                    manager.stop()  # closes its log handle (the process is gone)
                    time.sleep(rng.uniform(0.5, 3))
                    manager.start()
                next_kill = now + rng.uniform(0.5, 1.5) * args.kill_every
            time.sleep(0.5)
        stop_writing.set()
        stop_faults.set()
        for thread in threads:
            thread.join(30)
        expected = set(written.event_ids)
        print(
            f"soak: ingest stopped after {time.monotonic() - started:.0f} s: "
            f"{written.objects} objects, {len(expected)} events written; draining",
            flush=True,
        )
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline and count_rows(
            manager.db_path, "SELECT COUNT(*) FROM seen_events"
        ) < len(expected):
            time.sleep(1)
        time.sleep(5)  # let outputs of the last batch land
        stop_process(agent)
        manager.stop()
    finally:
        stop_writing.set()
        stop_faults.set()
        stop_process(agent)
        manager.stop()
        proxy.stop()
        moto.stop()

    stored = _stored_ids(manager.db_path)
    rows, distinct = _stored_once(manager.db_path)
    missing = expected - stored
    alert_rows = count_rows(manager.db_path, "SELECT COUNT(*) FROM alerts")
    alert_distinct = count_rows(
        manager.db_path, "SELECT COUNT(*) FROM (SELECT DISTINCT event_id, rule_id FROM alerts)"
    )
    lines, keys, torn = _alerts_lines(manager.home)
    twice = sum(1 for count in lines.values() if count > 1)
    twice += sum(1 for count in keys.values() if count > 1)
    print(f"kills: agent {kills['agent']}, manager {kills['manager']}; faults armed: {dict(armed)}")
    print(f"S3 faults served by the proxy: {dict(proxy.served)}")
    print(
        f"events: {len(expected)} written, {len(stored & expected)} stored, {len(missing)} missing"
    )
    print(f"dedupe table: {rows} rows, {distinct} distinct eventIDs")
    print(f"alerts: {alert_rows} stored, {alert_distinct} distinct (event, rule)")
    print(
        f"alerts.json: {sum(lines.values())} lines, {len(keys)} distinct (rule, event), "
        f"{twice} written twice, {torn} torn"
    )
    warm = [row for row in samples.rows if row[0] >= args.warmup * args.minutes * 60]
    if len(warm) >= 3:
        for label, column in (("agent", 1), ("manager tree", 2)):
            base, last, ratio = _growth([row[column] for row in warm if row[column] > 0])
            print(
                f"RSS {label:12s}: after warm-up {base:6.1f} MiB (baseline, first third), "
                f"at the end {last:6.1f} MiB (last third), ratio {ratio:.2f}"
            )
    print("  timeline: seconds, agent MiB, manager tree MiB")
    step = max(1, len(samples.rows) // 12)
    for t, a, m in samples.rows[::step]:
        print(f"    {t:7.0f} s {a:7.1f} {m:7.1f}")
    print(f"soak: done; {machine_load()}")
    ok = (
        not missing and rows == distinct and alert_rows == alert_distinct and not twice and not torn
    )
    print("soak: PASS" if ok else "soak: FAIL")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
