"""``trailwarden generate``: realistic CloudTrail log objects for demos, tests and benchmarks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trailwarden.common.errors import TrailWardenError
from trailwarden.common.generator.catalogue import SCENARIOS, resolve
from trailwarden.common.generator.generate import (
    DEFAULT_ACCOUNTS,
    DEFAULT_DURATION_SECONDS,
    DEFAULT_REGIONS,
    generate_records,
)
from trailwarden.common.generator.writer import write_objects
from trailwarden.common.timeparse import parse_duration, parse_timestamp


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``generate`` subcommand to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "generate",
        help="write realistic CloudTrail log objects (demo, tests, benchmarks)",
        description=(
            "Write CloudTrail log objects in CloudTrail's S3 key layout, gzipped, holding the "
            "chosen scenarios buried in read-only background calls. Deterministic with --seed."
        ),
    )
    parser.add_argument(
        "--accounts",
        type=_csv,
        default=list(DEFAULT_ACCOUNTS),
        help="comma-separated 12-digit account IDs (default: %(default)s)",
    )
    parser.add_argument(
        "--regions",
        type=_csv,
        default=list(DEFAULT_REGIONS),
        help="comma-separated regions (default: %(default)s)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=1000,
        help="total records, background calls included (default: %(default)s)",
    )
    parser.add_argument(
        "--scenario",
        default="all",
        help="'all', 'none' or comma-separated scenario names (see --list)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--start",
        help="eventTime of the first window, e.g. 2026-11-20T00:00:00Z "
        "(default: so that the trail ends now)",
    )
    parser.add_argument(
        "--duration",
        default=f"{int(DEFAULT_DURATION_SECONDS)}s",
        help="span of eventTime covered, e.g. 1h, 1d (default: 1h)",
    )
    parser.add_argument("--out", help="a directory, or s3://bucket[/prefix]")
    parser.add_argument("--endpoint-url", help="S3 endpoint (an emulator such as moto's server)")
    parser.add_argument("--profile", help="AWS profile for writing to S3")
    parser.add_argument(
        "--region",
        dest="bucket_region",
        help="region of the S3 client (and of a bucket it creates)",
    )
    parser.add_argument("--organization-id", help="write an organization trail: AWSLogs/o-.../")
    parser.add_argument(
        "--digest",
        action="store_true",
        help="also write CloudTrail-Digest objects (collectors must skip them)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the scenarios and the rules each must raise, then exit",
    )
    parser.set_defaults(func=handler)
    return parser


def handler(args: argparse.Namespace) -> int:
    """Run ``generate``; returns the exit code."""
    if args.list:
        width = max(len(name) for name in SCENARIOS)
        for name, scenario in SCENARIOS.items():
            rules = ",".join(scenario.expected_rules)
            print(f"{name:<{width}}  {rules:<12}  {scenario.description}")
        return 0
    if not args.out:
        print(
            "trailwarden generate: --out DIR or --out s3://bucket[/prefix] is required",
            file=sys.stderr,
        )
        return 2
    try:
        names = resolve(args.scenario)
        start = parse_timestamp(args.start) if args.start else None
        duration = parse_duration(args.duration)
        records = generate_records(
            args.accounts, args.regions, args.events, names, args.seed, start, duration
        )
        written = write_objects(
            records,
            args.out,
            organization_id=args.organization_id,
            seed=args.seed,
            digest=args.digest,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.bucket_region,
        )
    except ValueError as exc:
        print(f"trailwarden generate: {exc}", file=sys.stderr)
        return 2
    except TrailWardenError as exc:
        print(f"trailwarden generate: {exc}", file=sys.stderr)
        return 1
    first, last = records[0]["eventTime"], records[-1]["eventTime"]
    print(
        f"wrote {len(records)} records in {len(written)} objects to {args.out} "
        f"({len(names)} scenarios, eventTime {first} .. {last})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m trailwarden.common.generator``)."""
    parser = argparse.ArgumentParser(prog="trailwarden")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
