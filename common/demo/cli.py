"""Command line of ``trailwarden demo``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trailwarden.common.demo.run import DemoOptions, run_demo

DEFAULT_EVENTS = 250
"""Records in the demo trail: every scenario once, the rest read-only background calls."""
DEFAULT_SEED = 1
DEFAULT_TIMEOUT_SECONDS = 300.0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run everything locally against an S3 emulator and show the alerts",
        description=(
            "Start an S3 emulator (moto) on loopback, fill it with a generated organization "
            "trail (two accounts, two regions), run a manager (with its web console and a "
            "login made for this run) and an enrolled agent as real "
            "processes, show the alerts as they arrive and a summary by rule. Exits 0 when "
            "every record has been analysed and every expected rule fired."
        ),
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep everything running afterwards and print how to query it (Ctrl-C stops)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=DEFAULT_EVENTS,
        help="records in the generated trail (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="generator seed (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="seconds to wait for every record to be analysed (default: %(default)s)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="folder for the demo's manager, agent and logs (default: a temporary folder, "
        "removed afterwards)",
    )
    parser.set_defaults(func=handler)
    return parser


def handler(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    options = DemoOptions(
        events=args.events, seed=args.seed, keep=args.keep, timeout=args.timeout, home=args.home
    )
    return run_demo(options)
