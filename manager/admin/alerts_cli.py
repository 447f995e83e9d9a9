"""`trailwarden admin alerts` and `trailwarden admin stats`: find, follow and count alerts.

::

    trailwarden admin alerts [--since 24h | --from T --to T] [--arrival] [FILTERS]
        [--limit N] [--page-token T | --all] [--follow] [--json]
    trailwarden admin stats [--since 24h | --from T --to T] [--arrival] [FILTERS]
        [--by FIELD] [--top N] [--split FIELD] [--interval auto|1h|...] [--json]

FILTERS (all ANDed): --rule ID --min-level N --level N --agent --account --region --user
--event-name --event-source --source --bucket --error-code --source-ip --group --mitre --search.
Times are CloudTrail eventTime unless ``--arrival`` (when the manager raised the alert).
``stats --split FIELD`` or ``--interval`` prints a time series (Series RPC) instead of groups:
one column per group, one row per bucket (``--by hour``/``day`` make the interval 1h/1d, else
``auto``).

Output: a readable table, or with ``--json`` the stable shape documented in docs/ALERTS.md
(alerts: a JSON array, or one object per line with ``--follow``). Exit codes: 0 done, 1 the
manager could not be reached or failed, 2 the query is invalid (bad time, unknown field).
The query is checked here first with the same code the manager uses, so a typo fails fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

import grpc

from trailwarden.common.errors import CredentialsError, QueryError
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.client import (
    RPC_TIMEOUT_SECONDS,
    admin_stub,
    credentials_parent,
    describe_rpc_error,
)
from trailwarden.manager.store.base import DEFAULT_LIMIT, DEFAULT_SERIES_TOP, StatsField
from trailwarden.manager.store.query import (
    build_alert_query,
    build_series_query,
    build_stats_query,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_QUERY = 2
DESCRIPTION_WIDTH = 60
"""Descriptions are cut to this many characters in the table (never in --json)."""
_TABLE = (
    ("TIME (UTC)", 19),
    ("LEVEL", 5),
    ("RULE", 7),
    ("DESCRIPTION", DESCRIPTION_WIDTH),
    ("ACCOUNT", 12),
    ("USER", 20),
    ("AGENT", 0),
)


def register(admin_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alerts`` and ``stats`` to ``trailwarden admin``."""
    alerts = admin_subparsers.add_parser(
        "alerts",
        parents=[credentials_parent()],
        help="find and follow alerts",
        description="Alerts newest first (one page; --all for every page), or --follow live.",
    )
    _add_time_flags(alerts)
    _add_filter_flags(alerts)
    alerts.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"alerts per page (default {DEFAULT_LIMIT})",
    )
    paging = alerts.add_mutually_exclusive_group()
    paging.add_argument(
        "--page-token",
        default="",
        metavar="T",
        help="continue after a previous page (printed on stderr)",
    )
    paging.add_argument("--all", action="store_true", help="fetch every page")
    paging.add_argument(
        "--follow",
        action="store_true",
        help="stream new alerts as they are raised (with --since: replay first)",
    )
    alerts.set_defaults(func=alerts_command)

    stats = admin_subparsers.add_parser(
        "stats",
        parents=[credentials_parent()],
        help="alert counts and pipeline counters",
        description="Alert counts in a time range grouped by one field, plus pipeline counters.",
    )
    _add_time_flags(stats)
    _add_filter_flags(stats)
    stats.add_argument(
        "--by",
        default="rule",
        metavar="FIELD",
        help=f"{' | '.join(f.value for f in StatsField)} (default rule)",
    )
    stats.add_argument(
        "--top",
        type=int,
        default=None,
        metavar="N",
        help="only the N largest groups, the rest summed as other (stats: default every group; "
        f"series: default {DEFAULT_SERIES_TOP})",
    )
    stats.add_argument(
        "--split",
        default="",
        metavar="FIELD",
        help="print a time series split by this field (top N groups + other)",
    )
    stats.add_argument(
        "--interval",
        default="",
        metavar="I",
        help="print a time series with buckets of I: auto, 1m, 5m, 15m, 1h, 1d, ...",
    )
    stats.set_defaults(func=stats_command)


def _add_time_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        default="",
        metavar="DURATION",
        help="events of the last 30m, 24h, 7d ... (by CloudTrail eventTime)",
    )
    parser.add_argument(
        "--from",
        dest="from_time",
        default="",
        metavar="T",
        help="start time (2026-11-01, 2026-11-01T10:00:00Z, 2026-NOV-01)",
    )
    parser.add_argument("--to", dest="to_time", default="", metavar="T", help="end time")
    parser.add_argument(
        "--arrival",
        action="store_true",
        help="times are when the manager raised the alert, not the CloudTrail eventTime",
    )


_TEXT_FLAGS = (
    ("--agent", "agent_id", "ID", "agent ID"),
    ("--account", "account", "A", "AWS account ID"),
    ("--region", "region", "R", "AWS region"),
    ("--user", "user", "U", "principal (user) name"),
    ("--event-name", "event_name", "E", "CloudTrail eventName"),
    ("--event-source", "event_source", "S", "CloudTrail eventSource (iam.amazonaws.com)"),
    ("--source", "source", "S", "aws.source (cloudtrail)"),
    ("--bucket", "bucket", "B", "S3 bucket the record was read from"),
    ("--error-code", "error_code", "C", "CloudTrail errorCode (AccessDenied)"),
    ("--source-ip", "source_ip", "IP", "CloudTrail sourceIPAddress"),
    ("--group", "group", "G", "rule group"),
    ("--mitre", "mitre", "T", "MITRE ATT&CK technique ID (T1078)"),
)


def _add_filter_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="ID",
        help="rule ID (repeat or comma-separate for several)",
    )
    parser.add_argument(
        "--min-level", type=int, default=0, metavar="N", help="only alerts at this level or above"
    )
    parser.add_argument(
        "--level", type=int, default=None, metavar="N", help="only alerts at exactly this level"
    )
    for flag, dest, metavar, text in _TEXT_FLAGS:
        parser.add_argument(flag, dest=dest, default="", metavar=metavar, help=text)
    parser.add_argument(
        "--search", default="", metavar="TEXT", help="case-insensitive text anywhere in the alert"
    )


def filter_args(args: argparse.Namespace) -> dict[str, Any]:
    """The filter keywords (``store.query.build_filter``'s) of parsed command-line flags."""
    return {
        "since": args.since,
        "from_time": args.from_time,
        "to_time": args.to_time,
        "time_basis": "arrival" if args.arrival else "event",
        "rule_ids": tuple(args.rule),
        "min_level": args.min_level,
        "level": args.level,
        "search": args.search,
        **{dest: getattr(args, dest) for _, dest, _, _ in _TEXT_FLAGS},
    }


def filter_message(kwargs: dict[str, Any]) -> admin_pb2.AlertQuery:
    """An AlertQuery message carrying these filter keywords."""
    message = admin_pb2.AlertQuery(**{k: v for k, v in kwargs.items() if k != "level"})
    if kwargs.get("level") is not None:
        message.level = kwargs["level"]
    return message


# ---- alerts ----------------------------------------------------------------------------------


def alerts_command(args: argparse.Namespace) -> int:
    """Handler of ``trailwarden admin alerts``; returns the exit code."""
    kwargs = filter_args(args)
    request = filter_message(kwargs)
    request.limit = args.limit
    request.page_token = args.page_token
    try:
        if args.follow and args.to_time:
            raise QueryError("--follow streams from now on; it cannot take --to")
        build_alert_query(limit=args.limit, page_token=args.page_token, **kwargs)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_QUERY
    return _call(
        args,
        lambda stub: (
            _follow(stub, request, args.json)
            if args.follow
            else _pages(stub, request, args.json, every=args.all)
        ),
    )


def _pages(stub: Any, request: admin_pb2.AlertQuery, as_json: bool, *, every: bool) -> int:
    alerts: list[admin_pb2.Alert] = []
    while True:
        page = stub.QueryAlerts(request, timeout=RPC_TIMEOUT_SECONDS)
        alerts.extend(page.alerts)
        if not (every and page.next_page_token):
            break
        request.page_token = page.next_page_token
    if as_json:
        print(json.dumps([alert_json(a) for a in alerts], indent=2, ensure_ascii=False))
    else:
        print(_header())
        for alert in alerts:
            print(_row(alert))
        if not alerts:
            print("(no alerts match)")
    if page.next_page_token and not every:
        print(f"more alerts: add --page-token {page.next_page_token}", file=sys.stderr)
    return EXIT_OK


def _follow(stub: Any, request: admin_pb2.AlertQuery, as_json: bool) -> int:
    stream = stub.FollowAlerts(request)
    if not as_json:
        print(_header(), flush=True)
    try:
        for alert in stream:
            line = json.dumps(alert_json(alert), ensure_ascii=False) if as_json else _row(alert)
            print(line, flush=True)
    except KeyboardInterrupt:
        stream.cancel()
    return EXIT_OK


def alert_json(alert: admin_pb2.Alert) -> dict[str, Any]:
    """The stable ``--json`` object of one alert (docs/ALERTS.md)."""
    try:
        document = json.loads(alert.json) if alert.json else {}
    except ValueError:
        document = {}
    return {
        "id": alert.id,
        "timestamp": alert.timestamp,
        "event_time": alert.event_time,
        "rule_id": alert.rule_id,
        "level": alert.level,
        "description": alert.description,
        "groups": list(alert.groups),
        "mitre_ids": list(alert.mitre_ids),
        "firedtimes": alert.firedtimes,
        "agent_id": alert.agent_id,
        "agent_name": alert.agent_name,
        "account": alert.account,
        "region": alert.region,
        "event_source": alert.event_source,
        "event_name": alert.event_name,
        "user": alert.user,
        "source_ip": alert.source_ip,
        "event_id": alert.event_id,
        "source": alert.source,
        "bucket": alert.bucket,
        "error_code": alert.error_code,
        "alert": document,
    }


def _header() -> str:
    return _line(name for name, _ in _TABLE)


def _row(alert: admin_pb2.Alert) -> str:
    description = alert.description
    if len(description) > DESCRIPTION_WIDTH:
        description = description[: DESCRIPTION_WIDTH - 1] + "…"
    return _line(
        (
            alert.timestamp[:19].replace("T", " "),
            str(alert.level),
            alert.rule_id,
            description,
            alert.account or "-",
            alert.user or "-",
            alert.agent_name or alert.agent_id,
        )
    )


def _line(cells: Iterable[str]) -> str:
    parts = [cell.ljust(width) for cell, (_, width) in zip(cells, _TABLE, strict=True)]
    return "  ".join(parts).rstrip()


# ---- stats -----------------------------------------------------------------------------------


def stats_command(args: argparse.Namespace) -> int:
    """Handler of ``trailwarden admin stats``; returns the exit code."""
    if args.split or args.interval:
        return series_command(args)
    kwargs = filter_args(args)
    try:
        query = build_stats_query(by=args.by, top=args.top or 0, **kwargs)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_QUERY
    request = admin_pb2.StatsRequest(
        by=query.by.value, filter=filter_message(kwargs), top=query.top
    )

    def run(stub: Any) -> int:
        response = stub.Stats(request, timeout=RPC_TIMEOUT_SECONDS)
        try:
            extra = json.loads(response.json) if response.json else {}
        except ValueError:
            extra = {}
        if args.json:
            out = {
                "by": query.by.value,
                "time_basis": query.filter.time_basis.value,
                "total": response.total,
                "other": response.other,
                "buckets": [
                    {"key": b.key, "label": b.label, "count": b.count} for b in response.buckets
                ],
                "pipeline": extra.get("pipeline", {}),
                "store": extra.get("store", {}),
            }
            print(json.dumps(out, indent=2, ensure_ascii=False))
            return EXIT_OK
        rows = [(b.key, b.label, str(b.count)) for b in response.buckets]
        header = (query.by.value.upper(), "", "COUNT")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(3)]
        for row in (header, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if response.other:
            print(f"(other groups: {response.other})")
        print(f"total: {response.total} alert(s)")
        pipeline = extra.get("pipeline") or {}
        if pipeline:
            simple = {k: v for k, v in pipeline.items() if isinstance(v, int | float)}
            print("pipeline: " + ", ".join(f"{k}={v}" for k, v in simple.items()))
        return EXIT_OK

    return _call(args, run)


def series_command(args: argparse.Namespace) -> int:
    """``admin stats --split FIELD`` / ``--interval I``: a time series through the Series RPC."""
    kwargs = filter_args(args)
    by_time = {StatsField.HOUR.value: "1h", StatsField.DAY.value: "1d"}
    interval = args.interval or by_time.get(args.by, "auto")
    top = args.top if args.top is not None else DEFAULT_SERIES_TOP
    try:
        if args.by not in ("rule", StatsField.HOUR.value, StatsField.DAY.value):
            raise QueryError(
                f"--by {args.by} with --split/--interval: a series is by time; "
                "give --split FIELD (and --by hour|day or --interval)"
            )
        query = build_series_query(interval=interval, split=args.split, top=top, **kwargs)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_QUERY
    request = admin_pb2.SeriesRequest(
        filter=filter_message(kwargs), interval=interval, split=args.split, top=top
    )

    def run(stub: Any) -> int:
        response = stub.Series(request, timeout=RPC_TIMEOUT_SECONDS)
        groups = list(response.groups)
        if args.json:
            out = {
                "interval_seconds": response.interval_seconds,
                "time_basis": query.filter.time_basis.value,
                "split": response.split,
                "total": response.total,
                "starts": list(response.starts),
                "groups": [
                    {
                        "key": g.key,
                        "label": g.label,
                        "other": g.is_other,
                        "counts": list(g.counts),
                    }
                    for g in groups
                ],
            }
            print(json.dumps(out, indent=2, ensure_ascii=False))
            return EXIT_OK
        names = [("(other)" if g.is_other else g.key or "count") for g in groups]
        header = ["BUCKET START (UTC)", *names]
        rows = [
            [start[:16].replace("T", " "), *(str(g.counts[i]) for g in groups)]
            for i, start in enumerate(response.starts)
        ]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print(f"total: {response.total} alert(s), interval {response.interval_seconds}s")
        return EXIT_OK

    return _call(args, run)


# ---- shared ----------------------------------------------------------------------------------


def _call(args: argparse.Namespace, work: Callable[[Any], int]) -> int:
    """Run ``work(stub)``; gRPC and credentials failures become a message and an exit code."""
    try:
        with admin_stub(args) as stub:
            return int(work(stub))
    except grpc.RpcError as exc:
        print(describe_rpc_error(exc), file=sys.stderr)
        code = exc.code() if hasattr(exc, "code") else None
        return EXIT_BAD_QUERY if code == grpc.StatusCode.INVALID_ARGUMENT else EXIT_FAILED
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `| head`: the reader left; not an error
        return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m trailwarden.manager.admin.alerts_cli alerts|stats ...`` (same as
    ``trailwarden admin alerts|stats ...``)."""
    from trailwarden.common.cli import interruptible

    interruptible()
    parser = argparse.ArgumentParser(prog="trailwarden admin")
    register(parser.add_subparsers(dest="admin_command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
