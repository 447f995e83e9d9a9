"""The alert store benchmark on PostgreSQL (``bench/store.py --store postgresql://...``).

In a throwaway database ``tw_bench_<random>`` created on the server the URL names (and dropped
afterwards), the same alerts go, batch by batch and interleaved (so both feel the same machine
load), into (a) ``PostgresAlertStore.commit`` — Alert → row conversion, dedupe keys, the
advisory lock, one ``INSERT ... SELECT FROM unnest() ON CONFLICT DO NOTHING`` — and (b) the
baseline: a bare ``COPY`` of the already-built rows into a same-shaped table (schema
``baseline``, made by the same migration, so the same indexes, the trigram one included), one
transaction per batch. Only (a)'s commit and (b)'s COPY are timed. Ratio = store / COPY.

Then the queries of ``bench/store.py`` through ``store.query`` and ``store.stats``, each timed
``--repeat`` times: p50 and p95. Target for the indexed ones: p95 ≤ 300 ms (issue 15).
"""

from __future__ import annotations

import dataclasses
import secrets
import statistics
import time
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from bench.store import interleaved_inserts
from trailwarden.manager.store.base import AlertQuery, StatsQuery
from trailwarden.manager.store.postgres.alerts import PostgresAlertStore
from trailwarden.manager.store.postgres.url import mask_url
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.schema import ALERT_COLUMNS

TARGET_MS = 300.0


def _database_url(server: str, name: str, schema: str = "") -> str:
    parts = urlsplit(server)
    query = f"options={quote(f'-csearch_path={schema},public')}" if schema else parts.query
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", query, ""))


def _with_page_two(
    store: PostgresAlertStore, cases: list[tuple[str, Any, bool]]
) -> list[tuple[str, Any, bool]]:
    """The cases, each alert query followed by its second page when it has one."""
    out = []
    for label, q, indexed in cases:
        out.append((label, q, indexed))
        if isinstance(q, AlertQuery):
            token = store.query(q).next_page_token
            if token:
                out.append(("  ... page 2", dataclasses.replace(q, page_token=token), indexed))
    return out


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(server: str, args: Any, batches: Any, cases: list[tuple[str, Any, bool]]) -> int:
    """Insert and query on PostgreSQL; returns 1 if an indexed query is over the target."""
    name = f"tw_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    print(f"PostgreSQL {mask_url(server)}: throwaway database {name}")
    try:
        with psycopg.connect(_database_url(server, name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.execute("CREATE SCHEMA store")
            conn.execute("CREATE SCHEMA baseline")
        return _measure(server, name, args, batches, cases)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _measure(
    server: str, name: str, args: Any, batches: Any, cases: list[tuple[str, Any, bool]]
) -> int:
    retention = RetentionPolicy(alerts_days=0, max_db_bytes=0)
    text_index = bool(args.text_index)
    store = PostgresAlertStore.from_url(
        _database_url(server, name, "store"), retention=retention, text_index=text_index
    )
    # The same migration makes the baseline's table, so it has every index the store has.
    PostgresAlertStore.from_url(
        _database_url(server, name, "baseline"), text_index=text_index
    ).close()
    bare = psycopg.connect(_database_url(server, name, "baseline"))
    copy_sql = f"COPY alerts ({ALERT_COLUMNS}) FROM STDIN"

    def baseline(rows: list[tuple[Any, ...]]) -> None:
        with bare.transaction(), bare.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    done, store_s, bare_s = interleaved_inserts(batches, store, baseline, args.batch * 100)
    bare.close()
    with psycopg.connect(_database_url(server, name, "store"), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE alerts")
        conn.execute("VACUUM ANALYZE seen_events")
    store_rate, bare_rate = done / store_s, done / bare_s
    print(f"insert {done:,} alerts in batches of {args.batch} (text index {store.text_index})")
    print(f"  store.commit      {store_rate:>10,.0f} alerts/s  ({store_s:.1f} s)")
    print(f"  bare COPY         {bare_rate:>10,.0f} alerts/s  ({bare_s:.1f} s)  [baseline]")
    print(f"  ratio             {store_rate / bare_rate:>10.2f}")
    print(f"queries over {done:,} alerts (p50/p95 of {args.repeat} runs, first page of 50)")
    failures = 0
    for label, q, indexed in _with_page_two(store, cases):
        samples = []
        result: Any = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = store.stats(q) if isinstance(q, StatsQuery) else store.query(q)
            samples.append((time.perf_counter() - t0) * 1000)
        p50, p95 = statistics.median(samples), percentile(samples, 0.95)
        mark = ""
        if indexed:
            ok = p95 <= TARGET_MS
            failures += not ok
            mark = f"  ok (<= {TARGET_MS:.0f} ms)" if ok else f"  SLOW (> {TARGET_MS:.0f} ms)"
        size = len(result.buckets) if isinstance(q, StatsQuery) else len(result.alerts)
        print(f"  {label:<22} p50 {p50:>8.1f}  p95 {p95:>8.1f} ms  {size:>3} rows{mark}")
    store.close()
    return 1 if failures else 0
