"""Numeric flag types: ranges, zero, junk — argparse errors, never tracebacks."""

from __future__ import annotations

import argparse

import pytest

from trailwarden.common.cliargs import describe_seconds, duration_in, int_in


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    parser.add_argument("--limit", type=int_in(1, 100), default=10)
    parser.add_argument("--ttl", type=duration_in(1, 86400), default=60.0)
    return parser


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--limit", "0"], "0 is out of range: use 1..100"),
        (["--limit", "99999999999"], "out of range: use 1..100"),
        (["--limit", "ten"], r"'ten' is not a whole number \(use 1..100\)"),
        (["--ttl", "0s"], "'0s' is out of range: use 1s..1d"),
        (["--ttl", "2d"], "out of range"),
        (["--ttl", "soon"], "not a duration"),
    ],
)
def test_out_of_range_zero_and_junk_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(argparse.ArgumentError, match=message):
        _parser().parse_args(argv)


def test_values_in_range_and_defaults() -> None:
    args = _parser().parse_args(["--limit", "100", "--ttl", "1h"])
    assert (args.limit, args.ttl) == (100, 3600.0)
    assert _parser().parse_args([]).limit == 10
    assert describe_seconds(30 * 86400) == "30d" and describe_seconds(1) == "1s"
