"""Command line of ``trailwarden demo``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_EVENTS = 500
DEFAULT_SEED = 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run everything locally against an S3 emulator and show the alerts",
        description=(
            "Start an S3 emulator, fill it with a generated organization trail, run a manager "
            "and an enrolled agent, and show the alerts as they arrive."
        ),
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep everything running and print how to query it"
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
    parser.set_defaults(func=handler)
    return parser


def handler(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    print("trailwarden demo: not available yet in this build", file=sys.stderr)
    return 1
