"""Alert store benchmark: batched inserts against a bare-sqlite3 baseline, then indexed queries.

    python bench/store.py [--alerts 1000000] [--batch 1000] [--dir DIR] [--repeat 7]
                          [--events N] [--store postgresql://postgres@127.0.0.1:5432/postgres
                          [--text-index]]

With ``--store`` the same alerts and queries run on PostgreSQL instead, against a bare COPY
(``bench/store_postgres.py``).

Insert: the same alerts go, batch by batch and interleaved (so both feel the same machine
load), into (a) ``SqliteAlertStore.commit`` — Alert → row conversion (JSON of the full alert),
dedupe keys, alerts table — and (b) the baseline: a bare ``sqlite3`` ``executemany`` of the
already-built rows into a same-shaped table (the same schema and indexes, from the store's own
migration) in its own file with the same pragmas. Only (a)'s commit and (b)'s executemany are
timed; generating the alerts is not. Ratio = store alerts/s / baseline alerts/s (target ≥ 0.5).

Queries (over the store's database, then): rule + 24h range, user + 7d range (each a first
page of 50, newest first, through ``store.query``), also page 2, a min-level filter and stats,
each the median of ``--repeat`` runs. Target for the indexed ones: ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trailwarden.common.model import AgentRef
from trailwarden.common.timeparse import to_rfc3339
from trailwarden.manager.analysis.alert import Alert, RuleHit
from trailwarden.manager.store.base import EventRow
from trailwarden.manager.store.query import build_alert_query, build_stats_query
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import (
    CACHE_KIB,
    INSERT_ALERT_SQL,
    WAL_AUTOCHECKPOINT_PAGES,
    SqliteAlertStore,
    alert_row,
)
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.store.sqlite.schema import create_current_schema

END = datetime(2026, 11, 26, tzinfo=UTC)
SPAN_DAYS = 30
RULES = [str(80200 + i) for i in range(60)]
USERS = [f"user{i:04d}" for i in range(2000)]
EVENT_NAMES = [
    "ConsoleLogin",
    "AssumeRole",
    "GetObject",
    "PutBucketPolicy",
    "CreateUser",
    "RunInstances",
    "StopLogging",
    "DeleteTrail",
    "CreateAccessKey",
    "ListBuckets",
]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
ACCOUNTS = [f"{100000000000 + i * 7919}" for i in range(20)]


def generate(total: int, batch: int, seed: int) -> Iterator[list[Alert]]:
    """Batches of realistic alerts spread over the last SPAN_DAYS days, in time order."""
    rng = random.Random(seed)
    step = SPAN_DAYS * 86400 / total
    start = END - timedelta(days=SPAN_DAYS)
    for first in range(0, total, batch):
        out = []
        for n in range(first, min(total, first + batch)):
            when = start + timedelta(seconds=n * step)
            rule = rng.choice(RULES)
            user = rng.choice(USERS)
            account = rng.choice(ACCOUNTS)
            region = rng.choice(REGIONS)
            name = rng.choice(EVENT_NAMES)
            ip = f"198.51.{rng.randrange(256)}.{rng.randrange(256)}"
            event_id = f"{n:08x}-1b2c-4d5e-8f90-{rng.getrandbits(48):012x}"
            data = {
                "integration": "aws",
                "aws": {
                    "source": "cloudtrail",
                    "eventVersion": "1.08",
                    "eventID": event_id,
                    "eventTime": to_rfc3339(when),
                    "eventName": name,
                    "eventSource": "iam.amazonaws.com",
                    "eventType": "AwsApiCall",
                    "awsRegion": region,
                    "sourceIPAddress": ip,
                    "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64",
                    "recipientAccountId": account,
                    "userIdentity": {
                        "type": "IAMUser",
                        "principalId": f"AIDA{rng.getrandbits(64):016X}",
                        "arn": f"arn:aws:iam::{account}:user/{user}",
                        "accountId": account,
                        "userName": user,
                    },
                    "requestParameters": {"bucketName": "corp-data", "key": f"k/{n}"},
                    "responseElements": None,
                    "requestID": f"{rng.getrandbits(64):016x}",
                    "readOnly": False,
                    "managementEvent": True,
                    "log_info": {"s3bucket": "trail", "log_file": f"AWSLogs/{account}/x.json.gz"},
                    "aws_account_id": account,
                },
            }
            out.append(
                Alert(
                    id=f"{int(when.timestamp())}.{n}",
                    timestamp=to_rfc3339(when),
                    rule=RuleHit(
                        id=rule,
                        level=3 + int(rule) % 10,
                        description=f"AWS CloudTrail: {name} by {user}",
                        groups=("amazon", "aws_cloudtrail"),
                        mitre_ids=("T1078",),
                    ),
                    agent=AgentRef(id=f"agent-{n % 10}", name=f"host-{n % 10}"),
                    manager_name="bench",
                    location=f"trail/AWSLogs/{account}/CloudTrail/{region}/x.json.gz",
                    data=data,
                    event_id=event_id,
                    recipient_account=account,
                    event_time=to_rfc3339(when),
                    account=account,
                    region=region,
                    event_source="iam.amazonaws.com",
                    event_name=name,
                    user=user,
                    source_ip=ip,
                )
            )
        yield out


def baseline_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # The same settings the store gives its connections: the baseline differs only in doing
    # nothing but executemany.
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    create_current_schema(conn)
    return conn


def query_cases(now: datetime) -> list[tuple[str, Any, bool]]:
    """``(label, query, indexed)``: the alert queries both backends are timed on."""
    rule, user = RULES[17], USERS[42]
    return [
        ("rule + 24h", build_alert_query(rule_ids=[rule], since="24h", now=now), True),
        ("user + 7d", build_alert_query(user=user, since="7d", now=now), True),
        ("rule + 30d", build_alert_query(rule_ids=[rule], since="30d", now=now), True),
        (
            "user + from/to",
            build_alert_query(user=user, from_time="2026-11-10", to_time="2026-11-20"),
            True,
        ),
        ("min-level 12 + 24h", build_alert_query(min_level=12, since="24h", now=now), False),
        ("search text + 24h", build_alert_query(search="k/99", since="24h", now=now), False),
    ]


def interleaved_inserts(
    batches: Iterator[list[Alert]],
    store: Any,
    baseline: Callable[[list[tuple[Any, ...]]], None],
    report_every: int,
) -> tuple[int, float, float]:
    """Each batch into ``baseline`` (the already-built rows) and then ``store.commit`` (as an
    analysis worker hands alerts over: rendered, without the event); only those two are timed.
    Returns ``(alerts, store seconds, baseline seconds)``."""
    store_s = bare_s = 0.0
    done = 0
    for batch in batches:
        rows = [alert_row(a) for a in batch]
        for alert in batch:
            alert.data = {}
        events = [
            EventRow(a.event_id, a.recipient_account, a.agent.id, a.event_time, a.location, b"")
            for a in batch
        ]
        t0 = time.perf_counter()
        baseline(rows)
        bare_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        stored = store.commit(events, batch)
        store_s += time.perf_counter() - t0
        assert stored == len(batch), (stored, len(batch))
        done += len(batch)
        if done % report_every == 0:
            print(
                f"  {done:>9,} alerts: store {done / store_s:,.0f}/s, "
                f"baseline {done / bare_s:,.0f}/s",
                file=sys.stderr,
            )
    return done, store_s, bare_s


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median milliseconds of ``repeat`` runs, and the last result."""
    samples = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go")
    parser.add_argument(
        "--events",
        type=int,
        default=0,
        help="also time N dedupe keys alone (every record pays this)",
    )
    parser.add_argument(
        "--store",
        default="",
        metavar="URL",
        help="a PostgreSQL server URL: benchmark the PostgreSQL store in a throwaway database",
    )
    parser.add_argument(
        "--text-index",
        action="store_true",
        help="with --store: also keep the trigram index for the text search ([store] text_index)",
    )
    args = parser.parse_args(argv)
    if args.store:
        from bench.store_postgres import run

        cases = query_cases(END)
        stats = [
            (f"stats by {by} {since}", build_stats_query(by=by, since=since, now=END), False)
            for since in ("24h", "7d", "30d")
            for by in ("rule", "hour")
        ]
        batches = generate(args.alerts, args.batch, args.seed)
        return run(args.store, args, batches, [*cases, *stats])

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-store-") as tmp:
        root = Path(tmp)
        database = Database(root / "store.db")
        store = SqliteAlertStore(database, retention=RetentionPolicy(max_db_bytes=0))
        bare = baseline_db(root / "baseline.db")

        def baseline(rows: list[tuple[Any, ...]]) -> None:
            bare.execute("BEGIN IMMEDIATE")
            bare.executemany(INSERT_ALERT_SQL, rows)
            bare.execute("COMMIT")

        batches = generate(args.alerts, args.batch, args.seed)
        done, store_s, bare_s = interleaved_inserts(batches, store, baseline, args.batch * 100)
        bare.close()
        store_rate, bare_rate = done / store_s, done / bare_s
        print(f"insert {done:,} alerts in batches of {args.batch}")
        print(f"  store.commit      {store_rate:>10,.0f} alerts/s  ({store_s:.1f} s)")
        print(f"  bare executemany  {bare_rate:>10,.0f} alerts/s  ({bare_s:.1f} s)  [baseline]")
        print(f"  ratio             {store_rate / bare_rate:>10.2f}  (target >= 0.5)")

        now = END
        cases = query_cases(now)
        rule = RULES[17]
        print(f"queries over {done:,} alerts (median of {args.repeat}, first page of 50)")
        failures = 0
        for label, q, indexed in cases:
            ms, page = timed(lambda q=q: store.query(q), args.repeat)
            mark = ""
            if indexed:
                ok = ms <= 200
                failures += not ok
                mark = "  ok (<= 200 ms)" if ok else "  SLOW (> 200 ms)"
            print(f"  {label:<22} {ms:>8.1f} ms  {len(page.alerts):>3} alerts{mark}")
            if label == "rule + 30d" and page.next_page_token:
                q2 = build_alert_query(
                    rule_ids=[rule], since="30d", now=now, page_token=page.next_page_token
                )
                ms2, _ = timed(lambda q2=q2: store.query(q2), args.repeat)
                print(f"  {'  ... page 2':<22} {ms2:>8.1f} ms")
        for by in ("rule", "hour"):
            ms, result = timed(
                lambda by=by: store.stats(build_stats_query(by=by, since="24h", now=now)), 3
            )
            print(f"  stats by {by:<13} {ms:>8.1f} ms  {len(result.buckets):>3} buckets (24h)")
        if args.events:
            dedupe_bench(root, args.events, args.batch)
        store.close()
        database.close()
    return 1 if failures else 0


def dedupe_bench(root: Path, total: int, batch: int) -> None:
    """Event keys alone (every record, alert or not): lookup + commit vs bare executemany.

    CloudTrail eventIDs are random UUIDs, so each batch lands on pages all over the dedupe
    B-tree; this is the per-record cost the manager pays for exactly-once.
    """
    database = Database(root / "dedupe.db")
    store = SqliteAlertStore(database, retention=RetentionPolicy(max_db_bytes=0))
    bare = baseline_db(root / "dedupe-baseline.db")
    rng = random.Random(11)
    lookup_s = commit_s = bare_s = 0.0
    for _ in range(0, total, batch):
        keys = [f"{rng.getrandbits(128):032x}" for _ in range(batch)]
        events = [
            EventRow(k, "111111111111", "a", "2026-11-26T10:00:00Z", "b/k", b"") for k in keys
        ]
        t0 = time.perf_counter()
        store.seen_events([(k, "111111111111") for k in keys])
        t1 = time.perf_counter()
        store.commit(events, [])
        t2 = time.perf_counter()
        bare.execute("BEGIN IMMEDIATE")
        bare.executemany(
            "INSERT OR IGNORE INTO seen_events VALUES (?, ?, ?)",
            [(k, "111111111111", 0) for k in keys],
        )
        bare.execute("COMMIT")
        t3 = time.perf_counter()
        lookup_s += t1 - t0
        commit_s += t2 - t1
        bare_s += t3 - t2
    bare.close()
    store.close()
    database.close()
    print(f"dedupe keys: {total:,} random event IDs in batches of {batch}")
    print(f"  seen_events lookup {total / lookup_s:>10,.0f} keys/s")
    print(f"  commit (keys only) {total / commit_s:>10,.0f} keys/s")
    print(f"  bare executemany   {total / bare_s:>10,.0f} keys/s  [baseline]")
    print(f"  ratio              {(total / commit_s) / (total / bare_s):>10.2f}")


if __name__ == "__main__":
    sys.exit(main())
