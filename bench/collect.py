"""Collection benchmark: gzip CloudTrail objects in a moto S3 bucket → collector → spool.

    /work/venv/bin/python bench/collect.py [--objects 200] [--records 100] [--workers 8] [--runs 5]
                                           [--fresh-spool] [--manager]

A moto server runs in its own process on a free loopback port (a real HTTP endpoint, so both
sides pay boto3's whole stack, and the server's CPU is not charged to the measured process).
The bucket holds ``--objects`` gzipped ``{"Records": [...]}`` objects in CloudTrail layout,
``--records`` records each (real records of the invictus-ir dataset, eventIDs made unique).

Measured in the same process, alternately, ``--runs`` times each, after one unmeasured round of
both (one-time costs such as loading botocore's service models are not steady state):

* baseline: plain boto3 — list every key (paginated), then ``get_object`` + gunzip + ``json.loads``
  at ``--workers`` concurrency, counting the records;
* collector: a new ``Collector`` (so a new S3 client, as the baseline makes one) and its
  ``run_once`` with a CloudTrail source (``workers`` the same) into the durable spool
  (discovery listings, parse keeping each record's raw bytes, SQLite spool writes and
  checkpoints in the same transactions, the spool's background WAL checkpoints).

The spool is opened once, before the rounds, and closed after them, as an agent process opens
it once and then makes pass after pass; each round (warm-up included) has a bucket of its own,
filled with the same kind of objects before it starts, so every pass starts with no checkpoint
and collects everything. ``--fresh-spool`` instead creates a new spool file in every timed
collector run and closes it inside the timing (schema creation and the final WAL checkpoint
with its fsyncs, ~50 ms here: a per-process cost, not a per-pass one); every round then reads
the same bucket.

Prints records/s (median of the runs) for both and the ratio collector/baseline: the median of
the per-run ratios (each run measures both back to back, in alternating order, so load changes
on a shared machine hit both), target ≥ 0.8; the ratio of the medians is printed too.

``--manager`` adds the whole path: per run a fresh manager (``trailwarden manager run``) and an
enrolled agent home whose agent.toml holds the same source; ``trailwarden agent run --once`` is
timed from start to exit (it exits when the manager has acknowledged every record, i.e. stored
it) and the manager's database must then hold every eventID. That figure includes the agent
process's start-up (imports, TLS handshake), so it is reported beside the ratio, not in it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    count_rows,
    enroll_agent,
    init_manager,
    start_agent,
    start_moto,
    stop_process,
)
from trailwarden.agent.collector import Collector
from trailwarden.agent.spool import Spool
from trailwarden.common.schema.sources import parse_sources

DATASET = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "invictus-ir-aws_dataset"
    / "CloudTrail"
)
ACCOUNT = "123456789012"
KEY = "AKIABENCHBENCHBENCH0"
SECRET = "bench-secret-not-real"  # noqa: S105 - moto accepts any key


def client(url: str, workers: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(max_pool_connections=max(10, workers * 2)),
    )


def fill(s3: Any, bucket: str, objects: int, per_object: int) -> int:
    pool: list[dict[str, Any]] = []
    for file in sorted(DATASET.glob("*.json")):
        pool.extend(json.loads(file.read_bytes())["Records"])
    s3.create_bucket(Bucket=bucket)

    def put(index: int) -> None:
        records = []
        for j in range(per_object):
            record = dict(pool[(index * per_object + j) % len(pool)])
            record["eventID"] = str(uuid.uuid4())
            records.append(record)
        minute = index % 1440
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/01/{ACCOUNT}_CloudTrail_us-east-1_"
            f"20261101T{minute // 60:02d}{minute % 60:02d}Z_{uuid.uuid4().hex[:16]}.json.gz"
        )
        body = gzip.compress(json.dumps({"Records": records}).encode())
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    with ThreadPoolExecutor(8) as executor:
        list(executor.map(put, range(objects)))
    return objects * per_object


def baseline(url: str, bucket: str, workers: int) -> int:
    s3 = client(url, workers)
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", ())
    ]

    def one(key: str) -> int:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return len(json.loads(gzip.decompress(body))["Records"])

    with ThreadPoolExecutor(workers) as executor:
        return sum(executor.map(one, keys))


def collect(url: str, bucket: str, workers: int, home: Path, spool: Spool | None = None) -> int:
    """Records spooled by one pass over ``bucket``; into ``spool``, or a new one in ``home``
    (opened and closed here) when None."""
    home.mkdir(parents=True, exist_ok=True)
    own = spool is None
    if spool is None:
        spool = Spool(home / "spool.db", 1 << 40)
    table = {
        "type": "cloudtrail",
        "bucket": bucket,
        "aws_profile": "bench",
        "service_endpoint": url,
        "only_logs_after": "2026-11-01",
        "workers": workers,
    }
    result = Collector(parse_sources([table], "bench"), spool, state_dir=home).run_once()
    if own:
        spool.close()
    if not result.ok:
        raise SystemExit(f"collector failed: {result.errors}")
    return result.records_spooled


def through_manager(url: str, bucket: str, workers: int, root: Path, total: int) -> float:
    """records/s of ``agent run --once`` against a fresh manager; checks every record arrived."""
    manager = init_manager(root / "manager", analysis_workers=1)
    manager.start()
    try:
        source = (
            f'\n[[sources]]\ntype = "cloudtrail"\nbucket = "{bucket}"\naws_profile = "bench"\n'
            f'service_endpoint = "{url}"\nonly_logs_after = "2026-11-01"\nworkers = {workers}\n'
        )
        home = enroll_agent(manager, root / "agent", "bench-agent", source)
        started = time.perf_counter()
        agent = start_agent(home, "--once")
        try:
            code = agent.wait(600)
        finally:
            stop_process(agent)
        elapsed = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"agent run --once exited {code}; see {home / 'agent.log'}")
        stored = count_rows(manager.db_path, "SELECT COUNT(*) FROM seen_events")
        if stored != total:
            raise SystemExit(f"manager stored {stored} of {total} records")
        return total / elapsed
    finally:
        manager.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--records", type=int, default=100, help="records per object")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--fresh-spool",
        action="store_true",
        help="a new spool file per collector run, opened and closed inside the timing",
    )
    parser.add_argument(
        "--manager", action="store_true", help="also time agent run --once through a manager"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tw-bench-collect-") as tmp:
        root = Path(tmp)
        (root / "aws").mkdir()
        (root / "aws" / "config").write_text("[profile bench]\nregion = us-east-1\n")
        (root / "aws" / "credentials").write_text(
            f"[bench]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        )
        os.environ["AWS_CONFIG_FILE"] = str(root / "aws" / "config")
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(root / "aws" / "credentials")
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        moto = start_moto()
        url = moto.url
        try:
            s3 = client(url, 8)
            rounds = 1 if args.fresh_spool else args.runs + 1
            buckets = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(rounds)]
            total = 0
            for bucket in buckets:
                total = fill(s3, bucket, args.objects, args.records)
            bucket = buckets[0]
            spool = None if args.fresh_spool else Spool(root / "agent" / "spool.db", 1 << 40)
            print(
                f"{args.objects} objects, {total:,} records, workers {args.workers}, "
                + ("a new spool per run" if spool is None else "one spool, a bucket per round")
            )
            base_rates: list[float] = []
            ours_rates: list[float] = []
            whole_rates: list[float] = []
            # One unmeasured round first: one-time costs (botocore's service models, imports,
            # the first connections) belong to neither side's steady state.
            baseline(url, bucket, args.workers)
            collect(url, bucket, args.workers, root / "agent-warmup", spool)
            for run in range(args.runs):
                bucket = buckets[0 if spool is None else run + 1]

                def time_baseline(bucket: str = bucket) -> None:
                    started = time.perf_counter()
                    count = baseline(url, bucket, args.workers)
                    base_rates.append(count / (time.perf_counter() - started))
                    assert count == total, (count, total)

                def time_collector(run: int = run, bucket: str = bucket) -> None:
                    started = time.perf_counter()
                    count = collect(url, bucket, args.workers, root / f"agent-{run}", spool)
                    ours_rates.append(count / (time.perf_counter() - started))
                    assert count == total, (count, total)

                # Alternate which goes first, so neither always meets a warmer/colder server.
                for step in (time_baseline, time_collector)[:: 1 if run % 2 == 0 else -1]:
                    step()
                line = (
                    f"  run {run + 1}: baseline {base_rates[-1]:,.0f} records/s, "
                    f"collector {ours_rates[-1]:,.0f} records/s"
                )
                if args.manager:
                    whole_rates.append(
                        through_manager(url, bucket, args.workers, root / f"e2e-{run}", total)
                    )
                    line += f", agent --once → manager {whole_rates[-1]:,.0f} records/s"
                print(line, flush=True)
            if spool is not None:
                spool.close()
        finally:
            moto.stop()
    base, ours = statistics.median(base_rates), statistics.median(ours_rates)
    print(f"baseline (boto3 list+get+gunzip+json, {args.workers} threads): {base:,.0f} records/s")
    print(f"collector (S3 → parse → durable spool):             {ours:,.0f} records/s")
    if whole_rates:
        whole = statistics.median(whole_rates)
        print(
            f"agent run --once → manager stored (incl. start-up): {whole:,.0f} records/s "
            f"({whole / base:.2f} of baseline)"
        )
    # Each run pairs a baseline and a collector measurement taken back to back, so a change in
    # the machine's load hits both; the median of those paired ratios is the figure.
    paired = statistics.median(o / b for o, b in zip(ours_rates, base_rates, strict=True))
    print(f"ratio of the medians: {ours / base:.2f}")
    print(f"ratio: {paired:.2f} (median of the {args.runs} paired runs; target ≥ 0.8)")
    if paired < 0.8:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
