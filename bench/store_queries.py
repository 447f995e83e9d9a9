"""Console query benchmark: the overview's panels and an alerts page over a 1M-alert store.

    python bench/store_queries.py [--alerts 1000000] [--repeat 20] [--dir DIR] [--keep]

Builds (or, with ``--keep`` and an existing ``DIR/console-store.db``, reuses) a store of
``--alerts`` alerts spread over 30 days of CloudTrail event time, through the store's own
``commit`` (so the rollup counts are the ones ingest keeps): real alerts raised by the default
ruleset over ``common/generator`` trails (the documented scenarios and read-only background),
cloned over 40 accounts, 8 regions, 10 buckets, ~3,000 principals and ~20,000 source IPs with
skewed (Zipf-like) popularity, as real estates have, each clone with its own eventID and time.

Then, for a 7-day and a 24-hour range ending at the newest event, each panel of the console's
overview (and an alerts page, newest first, and its second page) is timed ``--repeat`` times,
unfiltered and with a slice clicked (``account = the busiest account``), through the store's
public methods with queries built by ``store.query``. Baseline, measured in the same run and
interleaved with the panels: the bare SQL ``SELECT count(*)`` of the same event-time range on
the same database. Prints p50/p95 per panel, the baseline's p50/p95 and the ratio of p95s;
exits 1 if any panel's p95 is over ``TARGET_MS``.

``build_store(path, alerts)`` is exported for ``bench/console.py`` (the console's own
benchmark) to build the same store.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from trailwarden.common.generator import generate_records
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.common.timeparse import to_rfc3339
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset
from trailwarden.manager.store.base import EventRow
from trailwarden.manager.store.query import (
    build_alert_query,
    build_series_query,
    build_stats_query,
)
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

TARGET_MS = 300.0
"""Issue 14: every panel's p95 at most this over 1M alerts for a 7-day range."""
END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
"""The newest event time in the built store (ranges end here)."""
SPAN_DAYS = 30
ACCOUNTS = [f"{210000000000 + i * 7919:012d}" for i in range(40)]
REGIONS = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
]
BUCKETS = [f"org-cloudtrail-{i}" for i in range(10)]
PRINCIPALS = 3000
ADDRESSES = 20_000
BATCH = 1000
COUNT_SQL = "SELECT count(*) FROM alerts WHERE event_time_ms >= ? AND event_time_ms < ?"
"""The baseline: the bare count of the same event-time range."""


def _zipf(rng: random.Random, n: int, skew: float = 1.1) -> int:
    """An index 0..n-1, small ones far more likely (a few busy accounts, users, addresses)."""
    while True:
        value = int(rng.paretovariate(skew)) - 1
        if value < n:
            return value


def _templates(seed: int) -> list[tuple[Alert, dict[str, Any]]]:
    """Real alerts of the default ruleset over a generated trail, with their records."""
    records = generate_records(
        accounts=ACCOUNTS[:4], regions=REGIONS[:3], events=6000, scenarios="all", seed=seed
    )
    analyzer = Analyzer(load_ruleset(default_ruleset_paths()), "bench-manager")
    source = SourceMeta("bench", BUCKETS[0], "AWSLogs/x/CloudTrail/us-east-1/x.json.gz")
    agent = AgentRef("001", "bench-agent")
    out = []
    for record in records:
        alert = analyzer.analyse(record, b"", source, agent).alert
        if alert is not None:
            out.append((alert, record))
    return out


def generate_alerts(total: int, seed: int = 7) -> Iterator[list[Alert]]:
    """Batches of alerts, oldest event first, spread over the SPAN_DAYS days before END."""
    rng = random.Random(seed)
    templates = _templates(seed)
    agents = [AgentRef(f"{i:03d}", f"collector-{i}") for i in range(1, 9)]
    step = SPAN_DAYS * 86400 / total
    start = END - timedelta(days=SPAN_DAYS)
    batch: list[Alert] = []
    for n in range(total):
        template, _record = templates[rng.randrange(len(templates))]
        when = start + timedelta(seconds=n * step)
        account = ACCOUNTS[_zipf(rng, len(ACCOUNTS))]
        region = REGIONS[_zipf(rng, len(REGIONS), 1.6)]
        bucket = BUCKETS[ACCOUNTS.index(account) % len(BUCKETS)]
        user = f"user-{_zipf(rng, PRINCIPALS, 0.9):04d}"
        address = _zipf(rng, ADDRESSES, 0.8)
        ip = f"198.{18 + address // 65536}.{address // 256 % 256}.{address % 256}"
        event_id = f"{n:08x}-7c1e-4d5e-8f90-{rng.getrandbits(48):012x}"
        event_time = to_rfc3339(when).replace(".000", "")
        aws = dict(template.data["aws"])
        aws.update(
            eventID=event_id,
            eventTime=event_time,
            awsRegion=region,
            sourceIPAddress=ip,
            recipientAccountId=account,
            aws_account_id=account,
            log_info={
                "s3bucket": bucket,
                "log_file": f"AWSLogs/{account}/CloudTrail/{region}/x.json.gz",
            },
        )
        identity = dict(aws.get("userIdentity") or {})
        identity["userName"] = user
        aws["userIdentity"] = identity
        arrival = when + timedelta(minutes=5 + rng.random() * 10)  # CloudTrail delivers late
        agent = agents[ACCOUNTS.index(account) % len(agents)]
        batch.append(
            Alert(
                id=f"{int(arrival.timestamp())}.{n}",
                timestamp=to_rfc3339(arrival),
                rule=template.rule,
                agent=agent,
                manager_name="bench-manager",
                location=f"{bucket}/AWSLogs/{account}/CloudTrail/{region}/x.json.gz",
                data={**template.data, "aws": aws},
                event_id=event_id,
                recipient_account=account,
                event_time=event_time,
                account=account,
                region=region,
                event_source=template.event_source,
                event_name=template.event_name,
                user=user,
                source_ip=ip,
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build_store(path: Path, alerts: int = 1_000_000, seed: int = 7) -> SqliteAlertStore:
    """A SQLite store at ``path`` (a manager.db) holding ``alerts`` alerts committed through
    ``SqliteAlertStore.commit``; reused as it is when the file already holds that many."""
    database = Database(path)
    store = SqliteAlertStore(database, retention=RetentionPolicy(alerts_days=0, max_db_bytes=0))
    have = store.counts()["alerts"]
    if have == alerts:
        return store
    if have:
        raise SystemExit(f"{path} holds {have:,} alerts, not {alerts:,}: remove it first")
    t0 = time.perf_counter()
    done = 0
    for batch in generate_alerts(alerts, seed):
        for alert in batch:
            alert.document()
            alert.data = {}  # as an analysis worker hands alerts over: rendered, no event
        events = [
            EventRow(a.event_id, a.recipient_account, a.agent.id, a.event_time, a.location, b"")
            for a in batch
        ]
        store.commit(events, batch)
        done += len(batch)
        if done % 100_000 == 0:
            rate = done / (time.perf_counter() - t0)
            print(f"  built {done:>9,} alerts ({rate:,.0f}/s)", file=sys.stderr)
    database.connection().execute("PRAGMA optimize")
    return store


@dataclass(frozen=True)
class Panel:
    name: str
    run: Callable[[dict[str, Any]], object]
    """Called with the range (and filter) keywords."""


def panels(store: SqliteAlertStore, now: datetime) -> list[Panel]:
    """The console overview's panels, each as the console asks its question."""

    def stats(by: str, top: int = 10, **extra: Any) -> Callable[[dict[str, Any]], object]:
        return lambda kw: store.stats(build_stats_query(by=by, top=top, now=now, **kw, **extra))

    def series(split: str, **extra: Any) -> Callable[[dict[str, Any]], object]:
        return lambda kw: store.series(
            build_series_query(split=split, top=5, now=now, **kw, **extra)
        )

    iam = {"event_source": "iam.amazonaws.com"}

    def page_two(kw: dict[str, Any]) -> object:
        first = store.query(build_alert_query(limit=50, now=now, **kw))
        return store.query(
            build_alert_query(limit=50, page_token=first.next_page_token, now=now, **kw)
        )

    return [
        Panel("Sources (by aws.source)", stats("source")),
        Panel("Accounts", stats("account")),
        Panel("Buckets", stats("bucket")),
        Panel("Regions", stats("region")),
        Panel("IAM events (by eventName)", stats("event-name", **iam)),
        Panel("Alerts by level", stats("level", top=0)),
        Panel("Top principals", stats("user")),
        Panel("Top source IPs", stats("source-ip")),
        Panel("Top failing calls (errorCode)", stats("error-code")),
        Panel("Detections (level>=5) by rule", stats("rule", min_level=5)),
        Panel("Detections (level>=5) by MITRE", stats("mitre", min_level=5)),
        Panel("Events by source over time", series("source")),
        Panel("Events by S3 bucket over time", series("bucket")),
        Panel("Alerts by level over time", series("level")),
        Panel("IAM alerts by rule over time", series("rule", **iam)),
        Panel("Total (series, no split)", series("")),
        Panel(
            "Alerts page 1 (newest first)",
            lambda kw: store.query(build_alert_query(limit=50, now=now, **kw)),
        ),
        Panel("Alerts page 2", page_two),
    ]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where the database goes")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) DIR's database")
    args = parser.parse_args(argv)
    if args.keep and args.dir is None:
        parser.error("--keep needs --dir")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-queries-") as tmp:
        path = (args.dir if args.keep else Path(tmp)) / "console-store.db"
        t0 = time.perf_counter()
        store = build_store(path, args.alerts)
        took = time.perf_counter() - t0
        print(f"store: {args.alerts:,} alerts over {SPAN_DAYS} days ({took:.0f} s to build/open)")
        return run_panels(store, path, args.repeat)


def run_panels(store: SqliteAlertStore, path: Path, repeat: int) -> int:
    """Time every panel; returns 1 if one is over the target for 7 days."""
    now = END + timedelta(seconds=1)
    conn = sqlite3.connect(path)  # the baseline's own, bare connection
    conn.execute("PRAGMA cache_size=-65536")
    accounts = store.stats(build_stats_query(by="account", since="7d", now=now))
    busiest, typical = accounts.buckets[0], accounts.buckets[len(accounts.buckets) // 2]
    share = {b.key: 100 * b.count / accounts.total for b in (busiest, typical)}
    filters = (
        ("none", {}),
        (f"busiest account ({share[busiest.key]:.0f}%)", {"account": busiest.key}),
        (f"typical account ({share[typical.key]:.1f}%)", {"account": typical.key}),
    )
    slow = 0
    over: list[str] = []
    print(f"p50/p95 of {repeat} runs each; baseline: bare SELECT count(*) of the same range")
    heads = ("p50 ms", "p95 ms", "base p50", "base p95", "p95 ratio")
    print(f"{'panel':<32} {'range':>5} {'filter':>26} " + " ".join(f"{h:>9}" for h in heads))
    for since in ("7d", "24h"):
        lo = int((now - timedelta(days=7 if since == "7d" else 1)).timestamp() * 1000)
        hi = int(now.timestamp() * 1000)
        in_range = conn.execute(COUNT_SQL, (lo, hi)).fetchone()[0]
        print(f"-- {since}: {in_range:,} alerts in range")
        for panel in panels(store, now):
            for label, extra in filters:
                kw = {"since": since, **extra}
                samples: list[float] = []
                base: list[float] = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    conn.execute(COUNT_SQL, (lo, hi)).fetchone()
                    base.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    panel.run(kw)
                    samples.append((time.perf_counter() - t) * 1000)
                p50, p95 = statistics.median(samples), percentile(samples, 0.95)
                b50, b95 = statistics.median(base), percentile(base, 0.95)
                mark = "" if p95 <= TARGET_MS else "  SLOW"
                slow += p95 > TARGET_MS and since == "7d"
                if p95 > TARGET_MS and since == "7d":
                    over.append(f"{panel.name} [{label}]")
                print(
                    f"{panel.name:<32} {since:>5} {label:>26} {p50:>9.1f} {p95:>9.1f} "
                    f"{b50:>9.1f} {b95:>9.1f} {p95 / b95:>9.2f}{mark}"
                )
    print(f"panels over {TARGET_MS:.0f} ms p95 (7d): {slow}: {'; '.join(over)}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
