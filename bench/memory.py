"""Memory benchmark: agent RSS over a large backfill, manager RSS with many agents connected.

    python bench/memory.py [--records 250000] [--source s3|directory] [--data DIR]
                           [--source-workers N] [--agents 1000] [--processes 4] [--batch-records 10]
                           [--analysis-workers 0] [--skip-agent] [--skip-manager]

Agent (target: peak RSS ≤ 100 MB during a 1M-record backfill; the default of 250k finishes in a
few minutes and peaks as high, the peak comes in the first minute). ``--records`` records are
made with the project's generator (``trailwarden.common.generator``: every scenario once, then
read-only background calls; 2 accounts x 2 regions, one object per account, region and five
minutes, ~1,000 records an object, in CloudTrail's key layout, gzipped), in parallel processes,
into ``--data`` (kept and reused when given, so a second run skips generation). With ``--source
s3`` (the default) they are uploaded to a bucket of a moto server running in its own process,
and the agent reads them as a ``cloudtrail`` source with ``only_logs_after`` at the first day: a
backfill; with ``--source directory`` it reads the folder. A real manager runs as ``trailwarden
manager run`` (``--analysis-workers``, 0 = one per core), the agent is enrolled through its
enrollment service and runs as ``trailwarden agent run --once`` (one pass, exits when the
manager has acknowledged every record). Its VmRSS is sampled every 100 ms from /proc and its
VmHWM (the kernel's own peak) read with each sample. Baseline, same run: an enrolled, connected
agent with the same source on an empty bucket (or folder): running, connected, idle; ratio =
backfill peak / idle. The records stored by the manager (dedupe keys) are checked against the
records written.

Manager (target: RSS ≤ 500 MB with 1,000 agents). A fresh manager subprocess; ``--agents``
agents are enrolled through its enrollment service (each makes its own key and CSR and gets its
own certificate) and connect over mutual TLS: real gRPC link clients, ``--processes`` processes
of asyncio clients. Each agent says hello, sends one batch of ``--batch-records`` records of its
own and waits for the ack (so every agent has cost the manager a session, a registry row, an
ingest and analysis state), then stays connected sending heartbeats. Measured: VmRSS of the
manager's process and of its whole tree (the analysis worker processes included), with every
agent connected. Baseline, same run: the same manager before any agent connected; ratio =
connected / idle. The target is judged on the tree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fanout import AgentCert, enroll_all
from bench.harness import (
    AWS_PROFILE,
    Manager,
    Sampler,
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

AGENT_TARGET_MB = 100.0
MANAGER_TARGET_MB = 500.0
ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("us-east-1", "eu-west-1")
CHUNK_RECORDS = 50_000
"""Records generated per chunk (one process each); a chunk covers CHUNK_SECONDS of eventTime."""
CHUNK_SECONDS = 3600
"""With 2 accounts x 2 regions and one object per five minutes: ~1,000 records an object."""
MB = 1024 * 1024 / 1_000_000
"""MiB → MB: /proc reports KiB; the targets are in MB."""


# ---- data ------------------------------------------------------------------------------------


def trail_start(records: int) -> datetime:
    """First eventTime: far enough back that the whole trail ends before now."""
    hours = -(-records // CHUNK_RECORDS) + 1
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours)


def write_chunk(index: int, events: int, out: str, start_iso: str, seed: int) -> tuple[int, int]:
    """One chunk of the trail as log objects under ``out``; (objects, records)."""
    from trailwarden.common.generator import generate_records, write_objects

    start = datetime.fromisoformat(start_iso) + timedelta(seconds=index * CHUNK_SECONDS)
    records = generate_records(
        ACCOUNTS,
        REGIONS,
        events,
        "all" if index == 0 else "none",
        seed * 100_000 + index,
        start,
        CHUNK_SECONDS,
    )
    written = write_objects(records, out, seed=seed * 100_000 + index)
    return len(written), len(records)


def make_trail(data: Path, records: int, seed: int) -> tuple[int, int, datetime]:
    """Generate (or reuse) the trail in ``data``; (objects, records, first eventTime)."""
    manifest = data / "manifest.json"
    wanted = {"records_asked": records, "seed": seed, "chunk": CHUNK_RECORDS}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if {k: saved.get(k) for k in wanted} == wanted:
            print(f"  reusing {saved['records']:,} records in {saved['objects']:,} objects")
            return saved["objects"], saved["records"], datetime.fromisoformat(saved["start"])
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    start = trail_start(records)
    sizes = [min(CHUNK_RECORDS, records - first) for first in range(0, records, CHUNK_RECORDS)]
    started = time.monotonic()
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(os.cpu_count() or 2, mp_context=ctx) as pool:
        futures = [
            pool.submit(write_chunk, i, n, str(data / "trail"), start.isoformat(), seed)
            for i, n in enumerate(sizes)
        ]
        done = [f.result() for f in futures]
    objects, total = sum(d[0] for d in done), sum(d[1] for d in done)
    manifest.write_text(
        json.dumps({**wanted, "records": total, "objects": objects, "start": start.isoformat()})
    )
    print(
        f"  generated {total:,} records in {objects:,} objects "
        f"in {time.monotonic() - started:.0f} s"
    )
    return objects, total, start


def upload(folder: Path, endpoint: str, bucket: str) -> int:
    s3 = s3_client(endpoint, 16)
    s3.create_bucket(Bucket=bucket)
    files = [p for p in folder.rglob("*.json.gz") if p.is_file()]

    def put(path: Path) -> None:
        s3.put_object(Bucket=bucket, Key=str(path.relative_to(folder)), Body=path.read_bytes())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
    return len(files)


# ---- agent backfill --------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentResult:
    records: int
    stored: int
    seconds: float
    idle_rss: float
    peak_rss: float
    peak_hwm: float
    manager_peak: float
    agent_cpu: float
    manager_cpu: float
    manager_main_cpu: float


def idle_agent_rss(manager: Manager, root: Path, source: str) -> float:
    """VmRSS of an enrolled agent whose source has nothing to read, connected and settled."""
    home = enroll_agent(manager, root / "agent-idle", "idle", source)
    process = start_agent(home)
    hello = "SELECT COUNT(*) FROM agents WHERE name = 'idle' AND address <> ''"
    try:
        deadline = time.monotonic() + 60
        while count_rows(manager.db_path, hello) < 1:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"idle agent never said hello; see {home / 'agent.log'}")
            time.sleep(0.2)
        time.sleep(3.0)  # first (empty) pass, first heartbeat, allocator settled
        return memory(process.pid).rss
    finally:
        stop_process(process)


def source_toml(args: argparse.Namespace, where: str, endpoint: str, start: datetime) -> str:
    """The backfill's ``[[sources]]`` table reading bucket (s3) or folder ``where``."""
    if args.source == "s3":
        text = (
            f'\n[[sources]]\ntype = "cloudtrail"\nname = "backfill"\nbucket = "{where}"\n'
            f'aws_profile = "{AWS_PROFILE}"\nservice_endpoint = "{endpoint}"\n'
            f'only_logs_after = "{start:%Y-%m-%d}"\ninterval = "1h"\n'
        )
    else:
        text = f'\n[[sources]]\ntype = "directory"\nname = "backfill"\npath = "{where}"\n'
        text += 'interval = "1h"\n'
    if args.source_workers:
        text += f"workers = {args.source_workers}\n"
    return text


def agent_backfill(args: argparse.Namespace, root: Path) -> AgentResult:
    data = args.data or root / "data"
    print(f"agent backfill: {args.records:,} records from {args.source} ({machine_load()})")
    _, total, start = make_trail(data, args.records, args.seed)
    moto = None
    manager = init_manager(root / "manager-backfill", args.analysis_workers)
    try:
        if args.source == "s3":
            moto = start_moto()
            use_aws_profile(root / "aws", moto.url)
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            uploaded = upload(data / "trail", moto.url, bucket)
            print(f"  uploaded {uploaded:,} objects in {time.monotonic() - started:.0f} s")
            s3_client(moto.url).create_bucket(Bucket=f"{bucket}-empty")
            source = source_toml(args, bucket, moto.url, start)
            empty = source_toml(args, f"{bucket}-empty", moto.url, start)
        else:
            (root / "empty").mkdir()
            source = source_toml(args, str(data / "trail"), "", start)
            empty = source_toml(args, str(root / "empty"), "", start)
        manager.start()
        idle = idle_agent_rss(manager, root, empty)
        home = enroll_agent(manager, root / "agent-backfill", "backfill", source)
        started = time.monotonic()
        process = start_agent(home, "--once")
        timeline: list[tuple[float, float, int, int]] = []
        with Sampler(process.pid) as agent, Sampler(manager.pid, 0.5) as manager_sampler:
            while process.poll() is None:
                timeline.append(
                    (
                        time.monotonic() - started,
                        memory(process.pid).rss,
                        count_rows(manager.db_path, "SELECT COUNT(*) FROM seen_events"),
                        count_rows(home / "spool.db", "SELECT COUNT(*) FROM spool_batches"),
                    )
                )
                time.sleep(args.timeline)
            code = process.wait()
        seconds = time.monotonic() - started
        print("  timeline: seconds, agent RSS MiB, records stored, batches in the agent's spool")
        step = max(1, len(timeline) // 12)
        for at, rss, stored_now, spooled in [*timeline[::step], timeline[-1]][:14]:
            print(f"    {at:6.0f} s {rss:7.1f} MiB {stored_now:>10,} stored {spooled:>6,} spooled")
        if code != 0:
            raise RuntimeError(f"agent exited {code}; see {home / 'agent.log'}")
        stored = count_rows(manager.db_path, "SELECT COUNT(*) FROM seen_events")
        return AgentResult(
            total,
            stored,
            seconds,
            idle,
            agent.peak,
            agent.hwm,
            manager_sampler.tree_peak,
            agent.tree_cpu,
            manager_sampler.tree_cpu,
            manager_sampler.cpu,
        )
    finally:
        manager.stop()
        if moto is not None:
            moto.stop()


# ---- manager with many agents ----------------------------------------------------------------


def agents_main(
    address: str,
    ca_pem: bytes,
    certs: list[AgentCert],
    batches: list[list[bytes]],
    ready: Any,
    stop: Any,
) -> None:
    asyncio.run(_agents(address, ca_pem, certs, batches, ready, stop))


async def _agents(
    address: str,
    ca_pem: bytes,
    certs: list[AgentCert],
    batches: list[list[bytes]],
    ready: Any,
    stop: Any,
) -> None:
    import grpc

    from trailwarden.common import channels
    from trailwarden.common.wire import link_pb2, link_pb2_grpc

    acked = 0
    all_acked = asyncio.Event()

    async def one(cert: AgentCert, records: list[bytes]) -> None:
        nonlocal acked
        credentials = channels.client_channel_credentials(ca_pem, cert.cert_pem, cert.key_pem)
        async with grpc.aio.secure_channel(
            address, credentials, options=channels.channel_options("localhost")
        ) as channel:
            outbox: asyncio.Queue[Any] = asyncio.Queue()
            await outbox.put(
                link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="bench", hostname="sim"))
            )

            async def requests() -> Any:
                while True:
                    item = await outbox.get()
                    if item is None:
                        return
                    yield item

            async def heartbeats() -> None:
                while True:
                    await outbox.put(
                        link_pb2.AgentMessage(
                            heartbeat=link_pb2.Heartbeat(time_unix_ms=int(time.time() * 1000))
                        )
                    )
                    await asyncio.sleep(15)

            beating: asyncio.Task[None] | None = None
            source = link_pb2.SourceMeta(
                source="bench",
                bucket="bench-trail",
                key=f"AWSLogs/{ACCOUNTS[0]}/CloudTrail/{REGIONS[0]}/{cert.agent_id}.json.gz",
                account_id=ACCOUNTS[0],
                region=REGIONS[0],
            )
            try:
                async for message in link_pb2_grpc.AgentLinkStub(channel).Connect(requests()):
                    kind = message.WhichOneof("body")
                    if kind == "welcome":
                        batch = link_pb2.EventBatch(sequence=1, source=source, records=records)
                        await outbox.put(link_pb2.AgentMessage(batch=batch))
                    elif kind == "ack" and 1 in message.ack.sequences:
                        acked += 1
                        if acked == len(certs):
                            all_acked.set()
                        beating = asyncio.create_task(heartbeats())
            finally:
                if beating is not None:
                    beating.cancel()

    tasks = [asyncio.create_task(one(c, b)) for c, b in zip(certs, batches, strict=True)]
    waiter: asyncio.Future[Any] = asyncio.create_task(all_acked.wait())
    failed: asyncio.Future[Any] = asyncio.gather(*tasks)
    await asyncio.wait([waiter, failed], return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        await failed  # a link ended before its ack: raise what ended it
        raise RuntimeError("a simulated agent's stream ended before its batch was acknowledged")
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if not failed.cancelled():
        failed.exception()  # retrieved: the cancellations above are how the links end


@dataclass(frozen=True)
class ManagerResult:
    agents: int
    idle_main: float
    idle_tree: float
    connected_main: float
    connected_tree: float
    hwm_main: float
    stored: int
    enroll_s: float
    connect_s: float


def agent_batches(count: int, per_agent: int, seed: int) -> list[list[bytes]]:
    """``per_agent`` generated records for each agent, every eventID its own."""
    from trailwarden.common.generator import generate_records

    records = generate_records(ACCOUNTS, REGIONS, count * per_agent, "none", seed)
    raws = [json.dumps(r, separators=(",", ":")).encode() for r in records]
    return [raws[i * per_agent : (i + 1) * per_agent] for i in range(count)]


def manager_connected(args: argparse.Namespace, root: Path) -> ManagerResult:
    count = args.agents
    print(f"manager with {count:,} agents connected ({machine_load()})")
    manager = init_manager(root / f"manager-{count}", args.analysis_workers)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    workers: list[Any] = []
    try:
        manager.start()
        time.sleep(3.0)  # analysis workers spawned and warmed up, allocator settled
        idle_main, idle_tree = memory(manager.pid).rss, tree_rss(manager.pid)
        started = time.monotonic()
        certs = enroll_all(manager.home, manager.enroll_port, count)
        enroll_s = time.monotonic() - started
        print(f"  enrolled {count:,} agents in {enroll_s:.1f} s")
        batches = agent_batches(count, args.batch_records, args.seed)
        ca_pem = (manager.home / "pki" / "ca.pem").read_bytes()
        processes = max(1, min(args.processes, count))
        readies = []
        started = time.monotonic()
        for index in range(processes):
            ready = ctx.Event()
            process = ctx.Process(
                target=agents_main,
                args=(
                    f"127.0.0.1:{manager.link_port}",
                    ca_pem,
                    certs[index::processes],
                    batches[index::processes],
                    ready,
                    stop,
                ),
                daemon=True,
            )
            process.start()
            workers.append(process)
            readies.append(ready)
        deadline = time.monotonic() + 600
        while not all(ready.is_set() for ready in readies):
            if any(not p.is_alive() for p in workers) or time.monotonic() > deadline:
                raise RuntimeError("simulated agents were not all connected and acknowledged")
            time.sleep(0.2)
        connect_s = time.monotonic() - started
        print(f"  {count:,} agents connected, one batch each acknowledged in {connect_s:.1f} s")
        time.sleep(3.0)  # bookkeeping of the hellos and first heartbeats done
        main = memory(manager.pid)
        tree = tree_rss(manager.pid)
        stored = count_rows(manager.db_path, "SELECT COUNT(*) FROM seen_events")
        return ManagerResult(
            count, idle_main, idle_tree, main.rss, tree, main.hwm, stored, enroll_s, connect_s
        )
    finally:
        stop.set()
        for process in workers:
            process.join(20)
            if process.is_alive():
                process.kill()
                process.join(5)
        manager.stop()


# ---- report ----------------------------------------------------------------------------------


def verdict(value_mib: float, target_mb: float) -> str:
    mb = value_mib * MB
    if mb <= target_mb:
        return f"meets the target of {target_mb:.0f} MB"
    return f"MISSES the target of {target_mb:.0f} MB by {mb - target_mb:.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records", type=int, default=250_000, help="backfill size (the issue's: 1000000)"
    )
    parser.add_argument("--source", choices=("s3", "directory"), default="s3")
    parser.add_argument(
        "--source-workers", type=int, default=0, help="the source's workers (0: its default)"
    )
    parser.add_argument("--data", type=Path, help="keep and reuse the generated trail here")
    parser.add_argument("--agents", type=int, default=1000, help="agents on the manager")
    parser.add_argument("--processes", type=int, default=4, help="simulated-agent processes")
    parser.add_argument("--batch-records", type=int, default=10, help="records each agent sends")
    parser.add_argument(
        "--analysis-workers", type=int, default=0, help="manager analysis processes, 0 = per core"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--timeline", type=float, default=2.0, help="seconds between timeline samples"
    )
    parser.add_argument("--skip-agent", action="store_true")
    parser.add_argument("--skip-manager", action="store_true")
    args = parser.parse_args()

    failures = 0
    with tempfile.TemporaryDirectory(prefix="tw-bench-memory-") as tmp:
        root = Path(tmp)
        if not args.skip_agent:
            a = agent_backfill(args, root)
            if a.stored != a.records:
                raise SystemExit(f"manager stored {a.stored:,} of {a.records:,} records")
            peak = max(a.peak_rss, a.peak_hwm)
            print(
                f"  backfill: {a.records:,} records stored by the manager in {a.seconds:.0f} s "
                f"({a.records / a.seconds:,.0f} records/s); manager tree peak "
                f"{a.manager_peak:.0f} MiB"
            )
            print(
                f"  CPU: agent {a.agent_cpu:.0f} s ({a.agent_cpu / a.records * 1e6:.0f} µs/record),"
                f" manager with its workers {a.manager_cpu:.0f} s "
                f"({a.manager_cpu / a.records * 1e6:.0f} µs/record; main process "
                f"{a.manager_main_cpu:.0f} s = {a.manager_main_cpu / a.seconds:.0%} of a core)"
            )
            print(f"  baseline idle agent RSS  : {a.idle_rss:7.1f} MiB (same source, empty)")
            print(
                f"  agent peak RSS (VmHWM)   : {peak:7.1f} MiB = {peak * MB:.0f} MB  "
                f"ratio {peak / a.idle_rss:.2f} x idle — {verdict(peak, AGENT_TARGET_MB)}"
            )
            failures += peak * MB > AGENT_TARGET_MB
        if not args.skip_manager:
            m = manager_connected(args, root)
            expected = m.agents * args.batch_records
            if m.stored != expected:
                raise SystemExit(f"manager stored {m.stored:,} of {expected:,} records")
            print(
                f"  baseline idle manager    : {m.idle_main:7.1f} MiB main, "
                f"{m.idle_tree:7.1f} MiB with its workers"
            )
            print(
                f"  with {m.agents:,} agents connected: {m.connected_main:7.1f} MiB main "
                f"(peak {m.hwm_main:.0f}), {m.connected_tree:7.1f} MiB with its workers = "
                f"{m.connected_tree * MB:.0f} MB  ratio {m.connected_tree / m.idle_tree:.2f} x "
                f"idle — {verdict(m.connected_tree, MANAGER_TARGET_MB)}"
            )
            failures += m.connected_tree * MB > MANAGER_TARGET_MB
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
