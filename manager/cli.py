"""`trailwarden manager init|run` (status: status_cli.py; cert and ca: ca_cli.py)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from trailwarden.common.cliargs import int_in
from trailwarden.manager.config import (
    DEFAULT_CONSOLE_PORT,
    DEFAULT_ENROLL_PORT,
    DEFAULT_LINK_PORT,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    manager = subparsers.add_parser("manager", help="run and set up the central manager")
    sub = manager.add_subparsers(dest="manager_command", required=True)

    init = sub.add_parser("init", help="create the CA, certificates, manager.toml and database")
    init.add_argument("--home", required=True, type=Path, help="manager home folder")
    init.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="NAME",
        help="host name or IP the manager is reached by (repeat; default: this "
        "host's name); localhost and 127.0.0.1 are always added",
    )
    init.add_argument("--listen-host", default="0.0.0.0", help="address to bind (default all)")
    init.add_argument(
        "--link-port",
        type=int_in(1, 65535),
        default=DEFAULT_LINK_PORT,
        help=f"agent link and Admin API port, 1..65535 (default {DEFAULT_LINK_PORT})",
    )
    init.add_argument(
        "--enroll-port",
        type=int_in(1, 65535),
        default=DEFAULT_ENROLL_PORT,
        help=f"enrollment port, 1..65535 (default {DEFAULT_ENROLL_PORT})",
    )
    init.add_argument(
        "--console-port",
        type=int,
        default=DEFAULT_CONSOLE_PORT,
        help="HTTPS port of the web console (default %(default)s)",
    )
    init.add_argument(
        "--store",
        default="",
        metavar="URL",
        help="keep alerts, dedupe keys, the archive and console users in this PostgreSQL database "
        "(postgresql://user@host:5432/db; checked and migrated now); default: SQLite in the home",
    )
    init.set_defaults(func=_init)

    run = sub.add_parser("run", help="serve enrollment, agent links and the Admin API")
    run.add_argument("--home", required=True, type=Path, help="manager home folder")
    run.set_defaults(func=_run)

    from trailwarden.manager.status_cli import add_status_command

    add_status_command(sub)

    from trailwarden.manager.ca_cli import add_certificate_commands

    add_certificate_commands(sub)


def _init(args: argparse.Namespace) -> int:
    from trailwarden.manager.home import init_home

    result = init_home(
        args.home,
        args.server_name or None,
        listen_host=args.listen_host,
        link_port=args.link_port,
        enroll_port=args.enroll_port,
        console_port=args.console_port,
        store_url=args.store,
    )
    print(f"manager home:      {result.home}")
    print(f"admin credentials: {result.credentials}  (export TRAILWARDEN_CREDENTIALS=...)")
    print(f"agent link:        {result.link_address}")
    print(f"enrollment:        {result.enroll_address}")
    print(f"CA SHA-256:        {result.ca_fingerprint}")
    if args.store:
        from trailwarden.manager.store.postgres.url import mask_url

        print(f"alert store:       {mask_url(args.store)}")
    print(f"web console:       {result.console_url}  (add a login: trailwarden admin user add)")
    print(f"start it with:     trailwarden manager run --home {result.home}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from trailwarden.manager.server import serve

    asyncio.run(serve(args.home.expanduser().resolve(), debug=args.debug))
    return 0
