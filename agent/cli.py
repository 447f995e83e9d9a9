"""`trailwarden agent enroll|run`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = subparsers.add_parser("agent", help="collect CloudTrail near an AWS account")
    sub = agent.add_subparsers(dest="agent_command", required=True)

    enroll = sub.add_parser("enroll", help="get a certificate from the manager with a token")
    enroll.add_argument("--home", required=True, type=Path, help="agent home folder")
    enroll.add_argument(
        "--manager", required=True, metavar="HOST:PORT", help="the manager's enrollment address"
    )
    enroll.add_argument("--token", required=True, help="from `trailwarden admin token create`")
    enroll.add_argument(
        "--ca-sha256",
        required=True,
        metavar="FP",
        help="the manager CA fingerprint printed by `manager init`",
    )
    enroll.add_argument("--name", help="agent name (default: this host's name)")
    enroll.add_argument("--force", action="store_true", help="replace an existing enrollment")
    enroll.set_defaults(func=_enroll)

    run = sub.add_parser("run", help="collect and forward to the manager")
    run.add_argument("--home", required=True, type=Path, help="agent home folder")
    run.add_argument(
        "--once",
        action="store_true",
        help="one pass over every source; exit when the manager has acked all",
    )
    run.set_defaults(func=_run)

    from trailwarden.agent.status_cli import add_status_command

    add_status_command(sub)


def _enroll(args: argparse.Namespace) -> int:
    from trailwarden.agent.enroll import enroll

    result = enroll(args.home, args.manager, args.token, args.ca_sha256, args.name, args.force)
    print(
        f"enrolled as agent {result.agent_id}; link {result.link_address}"
        + (f"; groups {', '.join(result.groups)}" if result.groups else "")
    )
    print(f"start it with: trailwarden agent run --home {args.home}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import logging

    from trailwarden.agent.config import load_agent_config
    from trailwarden.agent.identity import AgentIdentity
    from trailwarden.agent.runner import AgentRunner
    from trailwarden.common.logs import set_log_format

    tune_malloc()
    home = args.home.expanduser().resolve()
    config = load_agent_config(home)
    if not args.debug:
        logging.getLogger().setLevel(config.log_level)
    set_log_format(config.log_format)
    runner = AgentRunner(config, AgentIdentity.load(home))

    def stop(signum: int, frame: Any) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.once:
        result = runner.run_once(progress=True)
        print(
            f"pass complete: {result.objects} objects, {result.records} records, "
            f"{result.failed} failed, {result.acked_batches} batches acknowledged",
            file=sys.stderr,
        )
        for error in result.errors:
            print(f"trailwarden: {error}", file=sys.stderr)
        return 1 if result.failed or result.errors else 0
    runner.run()
    return 0


MALLOC_ARENAS = 2
"""glibc gives each fetch thread its own malloc arena (up to 8 per core) and keeps what they
free; two arenas took ~54 MiB off a backfill's peak RSS (docs/PERFORMANCE.md)."""
MMAP_THRESHOLD = 64 << 10
"""Blocks from this size on get a mapping of their own, returned to the system when freed.
glibc otherwise raises this threshold (up to 32 MiB) each time such a block is freed, after
which the ~1 MiB buffers every object passes through (its inflated bytes and text, batch blobs,
link messages) come from the heap, where the holes they leave stay in RSS: on a 100k-record
backfill the collector's peak went from +35 MiB to +14 MiB over idle, and it ran faster."""


def tune_malloc() -> None:
    """Same effect as MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536, set from inside before
    the worker threads start."""
    import ctypes
    import ctypes.util

    m_mmap_threshold, m_arena_max = -3, -8  # from glibc's malloc.h
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(m_arena_max, MALLOC_ARENAS)
        libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass  # not glibc (e.g. musl): nothing to tune
