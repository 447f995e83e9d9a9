"""The `trailwarden` entry point: one command, subcommands registered by each component.

Each component module exposes ``register(subparsers)``; handlers return the exit code. Errors
of our own hierarchy print one clear line (exit 2 for bad input/config, 3 for an agent the
manager refuses for good, 1 otherwise); nothing prints a traceback at a user unless --debug is
given. The systemd units do not restart on 2 or 3 (RestartPreventExitStatus).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from trailwarden.common.errors import (
    EXIT_AGENT_REFUSED,
    AgentRefusedError,
    ConfigError,
    QueryError,
    RuleError,
    TrailWardenError,
)
from trailwarden.common.logs import setup_logging

COMMANDS_GROUP = "trailwarden.commands"
"""Entry-point group of the modules that add subcommands (``register(subparsers)``).

The components are named in pyproject.toml, not here: common/ is the ground floor and imports
neither the agent nor the manager, and the entry point is the one place that wires them all
together. Each is listed with its position, so ``--help`` keeps a stable order."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trailwarden",
        description="CloudTrail monitoring: agents forward every record to a manager that "
        "runs Wazuh-compatible rules and stores alerts.",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        importlib.import_module(module).register(subparsers)
    return parser


def command_modules() -> list[str]:
    """The modules registered under COMMANDS_GROUP, in their declared order (``NN-name``)."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=COMMANDS_GROUP), key=lambda point: point.name)
    if not found:
        raise RuntimeError(
            f"no {COMMANDS_GROUP} entry points: install the package (pip install -e .)"
        )
    return [point.value for point in found]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"trailwarden {version('trailwarden')}"
    except PackageNotFoundError:
        return "trailwarden (not installed)"


def interruptible() -> None:
    """Make SIGINT raise KeyboardInterrupt again if we were started with it ignored.

    A non-interactive shell starts background jobs (``cmd &``, CI scripts, supervisors) with
    SIGINT ignored, and the ignore is inherited: ``trailwarden demo`` then never stopped on the
    SIGINT it tells users to send, nor ``admin alerts --follow`` on Ctrl-C. Every command here
    treats SIGINT as "stop now" (the manager and the agent drain on it), so take it back. A
    terminal's Ctrl-C still reaches only the foreground job."""
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    interruptible()
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up: no traceback
        return 130
    try:
        setup_logging(debug=args.debug)
        return int(args.func(args) or 0)
    except AgentRefusedError as exc:
        if args.debug:
            raise
        print(f"trailwarden: {exc}", file=sys.stderr)
        return EXIT_AGENT_REFUSED
    except (ConfigError, QueryError, RuleError) as exc:
        if args.debug:
            raise
        print(f"trailwarden: {exc}", file=sys.stderr)
        return 2
    except TrailWardenError as exc:
        if args.debug:
            raise
        print(f"trailwarden: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        import grpc

        if isinstance(exc, grpc.RpcError) and not args.debug:
            from trailwarden.common.channels import describe_rpc_error

            print(f"trailwarden: {describe_rpc_error(exc)}", file=sys.stderr)
            code = exc.code() if hasattr(exc, "code") else None
            return 2 if code == grpc.StatusCode.INVALID_ARGUMENT else 1
        raise


if __name__ == "__main__":
    logging.basicConfig()
    raise SystemExit(main())
