"""SQS notification benchmark: S3 put → alert stored through SQS, and collection throughput.

    python bench/sqs.py [--objects 40] [--records 5] [--throughput-objects 2000]
                        [--throughput-records 20] [--workers 8] [--runs 3] [--seed 1]

A moto server (its own process, a real HTTP endpoint) holds the bucket and the queue; the
bucket's event notification configuration sends every created object to the queue, as S3 does.

**Latency**, with one and then two agents (``trailwarden agent run`` processes, one
``cloudtrail-sqs`` source each, the default 20 s long poll) and a real manager (``trailwarden
manager run``): ``--objects`` objects, one at a time after a random pause of up to 0.5 s, each
of ``--records`` generated records with fresh eventIDs under a CloudTrail key; the clock starts
when ``put_object`` returns and stops when the manager's database holds an alert for the
object's first record. Reported: p50/p99/max per agent count; target p99 ≤ 2 s. Baseline, same
run: a plain boto3 reader's floor, from put_object returning to its notification received
(long poll), the object fetched and parsed, and the message deleted (p50/p99).

**Throughput**: ``--throughput-objects`` objects of ``--throughput-records`` records each,
announced ten keys to a message in CloudTrail's own SNS notification shape (moto's SQS costs
O(queue length) per call, which would otherwise swamp both sides alike), measured ``--runs``
times each, alternately, in this process:

* baseline: plain boto3 — ``--workers`` threads each receive 10 messages, get + gunzip +
  ``json.loads`` every named object, and delete the messages in one batch call;
* the source: a new ``Collector`` with one ``cloudtrail-sqs`` source (``workers`` the same)
  into the durable spool, a thread acknowledging the spool's batches as the manager would, timed
  until the queue is drained and every message deleted after its acks.

Prints records/s (median of runs) for both and the median per-run ratio source/baseline; target
≥ 0.8.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    AWS_KEY,
    AWS_PROFILE,
    AWS_SECRET,
    enroll_agent,
    init_manager,
    machine_load,
    percentile,
    s3_client,
    start_agent,
    start_moto,
    stop_process,
    use_aws_profile,
)
from bench.latency import wait_stored
from trailwarden.agent.collector import Collector
from trailwarden.agent.spool import Spool
from trailwarden.common.generator import generate_records
from trailwarden.common.generator.layout import log_key, prefix_path
from trailwarden.common.logfile import gzip_records
from trailwarden.common.schema.sources import parse_sources

ACCOUNT = "111111111111"
REGION = "us-east-1"
TARGET_P99_S = 2.0
TARGET_RATIO = 0.8


def sqs_client(endpoint: str, pool: int = 16) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=AWS_KEY,
        aws_secret_access_key=AWS_SECRET,
        config=Config(max_pool_connections=pool),
    )


def new_queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(url), str(arn["QueueArn"])


def notify(s3: Any, sqs: Any, bucket: str, queue_url: str, queue_arn: str) -> None:
    """The bucket notifies the queue of every created object; S3's test event is dropped."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.purge_queue(QueueUrl=queue_url)


def trail_object(records: int, seed: int) -> tuple[str, bytes, str]:
    """(key, gzipped body, eventID of the first record) of generated records."""
    rng = random.Random(seed)
    generated = generate_records([ACCOUNT], [REGION], records, "none", seed)
    for record in generated:
        record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    key = log_key(prefix_path("", None), ACCOUNT, REGION, datetime.now(UTC), uuid.uuid4().hex)
    return key, gzip_records(generated), str(generated[0]["eventID"])


def sqs_source_toml(name: str, queue_url: str, endpoint: str) -> str:
    return (
        f'\n[[sources]]\ntype = "cloudtrail-sqs"\nname = "{name}"\nqueue_url = "{queue_url}"\n'
        f'aws_profile = "{AWS_PROFILE}"\nsqs_endpoint = "{endpoint}"\n'
        f'service_endpoint = "{endpoint}"\n'
    )


# ---- latency ---------------------------------------------------------------------------------


def latency(
    root: Path, endpoint: str, agents: int, objects: int, records: int, rng: random.Random
) -> list[float]:
    s3, sqs = s3_client(endpoint), sqs_client(endpoint)
    tag = uuid.uuid4().hex[:8]
    bucket = f"bench-{tag}"
    s3.create_bucket(Bucket=bucket)
    queue_url, queue_arn = new_queue(sqs, f"bench-{tag}")
    notify(s3, sqs, bucket, queue_url, queue_arn)
    manager = init_manager(root / f"manager-{agents}", analysis_workers=1)
    manager.start()
    processes = []
    try:
        for number in range(agents):
            home = enroll_agent(
                manager,
                root / f"agent-{agents}-{number}",
                f"sqs-{agents}-{number}",
                sqs_source_toml("notes", queue_url, endpoint),
            )
            processes.append(start_agent(home))
        seed = rng.randrange(1 << 30)
        key, body, first = trail_object(records, seed)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        wait_stored(manager, first)  # warm-up: connections, first receive
        samples = []
        for index in range(objects):
            time.sleep(rng.uniform(0, 0.5))
            key, body, first = trail_object(records, seed + index + 1)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            written = time.time()
            samples.append(wait_stored(manager, first) - written)
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"an agent exited; see {root}/agent-*/agent.log")
        return samples
    finally:
        for process in processes:
            stop_process(process)
        manager.stop()


def latency_baseline(endpoint: str, objects: int, records: int) -> list[float]:
    """From put_object returning: a long-polled receive of its notification, get_object +
    gunzip + json.loads, delete."""
    s3, sqs = s3_client(endpoint), sqs_client(endpoint)
    tag = uuid.uuid4().hex[:8]
    bucket = f"bench-base-{tag}"
    s3.create_bucket(Bucket=bucket)
    queue_url, queue_arn = new_queue(sqs, f"bench-base-{tag}")
    notify(s3, sqs, bucket, queue_url, queue_arn)
    out = []
    for index in range(objects):
        key, body, _ = trail_object(records, 10_000 + index)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        started = time.perf_counter()  # as for the agents: from put_object returning
        messages: list[dict[str, Any]] = []
        while not messages:
            messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=20).get(
                "Messages", []
            )
        (message,) = messages
        record = json.loads(message["Body"])["Records"][0]["s3"]
        got = s3.get_object(
            Bucket=record["bucket"]["name"], Key=unquote_plus(record["object"]["key"])
        )
        json.loads(gzip.decompress(got["Body"].read()))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        out.append(time.perf_counter() - started)
    return out


# ---- throughput ------------------------------------------------------------------------------


def fill(endpoint: str, objects: int, records: int, seed: int) -> tuple[str, str, int]:
    """A bucket of ``objects`` objects and a queue announcing them ten keys a message."""
    s3, sqs = s3_client(endpoint), sqs_client(endpoint)
    tag = uuid.uuid4().hex[:8]
    bucket = f"bench-tp-{tag}"
    s3.create_bucket(Bucket=bucket)
    queue_url, _ = new_queue(sqs, f"bench-tp-{tag}")

    def put(index: int) -> str:
        key, body, _ = trail_object(records, seed + index)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return key

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(put, range(objects)))
    bodies = [
        json.dumps(
            {
                "Type": "Notification",
                "Message": json.dumps({"s3Bucket": bucket, "s3ObjectKey": keys[i : i + 10]}),
            }
        )
        for i in range(0, len(keys), 10)
    ]
    for i in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[i : i + 10])]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    return bucket, queue_url, objects * records


def baseline(endpoint: str, queue_url: str, workers: int) -> int:
    s3, sqs = s3_client(endpoint, workers * 2), sqs_client(endpoint, workers * 2)

    seen: set[str] = set()
    lock = threading.Lock()

    def worker() -> int:
        count = 0
        while True:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=300
            ).get("Messages", [])
            if not messages:
                return count
            for message in messages:
                note = json.loads(json.loads(message["Body"])["Message"])
                for key in note["s3ObjectKey"]:
                    with lock:  # moto's threaded server may hand a message out twice
                        if key in seen:
                            continue
                        seen.add(key)
                    body = s3.get_object(Bucket=note["s3Bucket"], Key=key)["Body"].read()
                    count += len(json.loads(gzip.decompress(body))["Records"])
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(lambda _: worker(), range(workers)))


def source(endpoint: str, queue_url: str, workers: int, home: Path) -> int:
    """Records through the cloudtrail-sqs source, every message deleted after its acks."""
    home.mkdir(parents=True, exist_ok=True)
    spool = Spool(home / f"spool-{uuid.uuid4().hex[:8]}.db", 1 << 40)
    table = {
        "type": "cloudtrail-sqs",
        "queue_url": queue_url,
        "aws_profile": AWS_PROFILE,
        "sqs_endpoint": endpoint,
        "service_endpoint": endpoint,
        "wait_time": "1s",
        "workers": workers,
    }
    done = threading.Event()

    def acknowledge() -> None:  # as the manager would, as soon as batches are spooled
        while not done.is_set():
            batches = spool.pending(0, 500)
            if batches:
                spool.ack(b.sequence for b in batches)
            else:
                spool.wait_for_batches(0, 0.05)

    acker = threading.Thread(target=acknowledge, daemon=True)
    acker.start()
    try:
        collector = Collector(parse_sources([table], "bench"), spool, state_dir=home)
        result = collector.run_once()
        while collector.outstanding():
            time.sleep(0.005)
    finally:
        done.set()
        acker.join(5)
        spool.close()
    if not result.ok:
        raise SystemExit(f"source failed: {result.errors}")
    return result.records_spooled


# ---- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=40, help="latency samples per run")
    parser.add_argument("--records", type=int, default=5, help="records per latency object")
    parser.add_argument("--throughput-objects", type=int, default=2000)
    parser.add_argument("--throughput-records", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ok = True
    print(f"sqs: {machine_load()}")
    with tempfile.TemporaryDirectory(prefix="tw-bench-sqs-") as tmp:
        root = Path(tmp)
        moto = start_moto()
        try:
            use_aws_profile(root / "aws", moto.url)
            base = latency_baseline(moto.url, args.objects, args.records)
            b50, b99 = percentile(base, 50), percentile(base, 99)
            print(
                f"  baseline put → receive → get → delete: p50 {b50 * 1000:6.0f} ms"
                f"   p99 {b99 * 1000:6.0f} ms"
            )
            for agents in (1, 2):
                samples = latency(root, moto.url, agents, args.objects, args.records, rng)
                p50, p99 = percentile(samples, 50), percentile(samples, 99)
                verdict = "meets" if p99 <= TARGET_P99_S else "MISSES"
                ok = ok and p99 <= TARGET_P99_S
                print(
                    f"  {agents} agent(s): S3 put → alert stored: p50 {p50 * 1000:6.0f} ms"
                    f"   p99 {p99 * 1000:6.0f} ms   max {max(samples) * 1000:.0f} ms"
                    f"   ratio p99 {p99 / b99:.1f} x baseline — {verdict} p99 ≤ {TARGET_P99_S} s"
                )

            ratios, base_rates, source_rates = [], [], []
            for run in range(args.runs + 1):  # the first round warms both up, not counted
                order = ["baseline", "source"] if run % 2 == 0 else ["source", "baseline"]
                rates: dict[str, float] = {}
                for which in order:
                    _, queue_url, total = fill(
                        moto.url,
                        args.throughput_objects,
                        args.throughput_records,
                        rng.randrange(1 << 30),
                    )
                    started = time.perf_counter()
                    if which == "baseline":
                        got = baseline(moto.url, queue_url, args.workers)
                    else:
                        got = source(moto.url, queue_url, args.workers, root / "tp")
                    elapsed = time.perf_counter() - started
                    if got < total:
                        raise SystemExit(f"{which}: {got} of {total} records")
                    if got > total:  # a message handed out twice: the manager drops them
                        print(f"  ({which}: {got - total} records read twice)")
                    rates[which] = total / elapsed
                if run == 0:
                    continue
                base_rates.append(rates["baseline"])
                source_rates.append(rates["source"])
                ratios.append(rates["source"] / rates["baseline"])
                print(
                    f"  run {run}: baseline {rates['baseline']:8,.0f} records/s   source"
                    f" {rates['source']:8,.0f} records/s   ratio {ratios[-1]:.2f}"
                )
        finally:
            moto.stop()
    ratio = statistics.median(ratios)
    ok = ok and ratio >= TARGET_RATIO
    print(
        f"  throughput, {args.throughput_objects} objects x {args.throughput_records} records:"
        f" baseline {statistics.median(base_rates):,.0f} records/s, source"
        f" {statistics.median(source_rates):,.0f} records/s, ratio {ratio:.2f}"
        f" ({'meets' if ratio >= TARGET_RATIO else 'MISSES'} ≥ {TARGET_RATIO})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
