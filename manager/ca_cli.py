"""`trailwarden manager cert renew` and `trailwarden manager ca rotate|finish`.

Local commands on the manager's home (they need its CA key, which never leaves it); the
running manager picks the new files up by itself (manager/pki/live.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from trailwarden.common.cliargs import duration_in, int_in
from trailwarden.manager.pki.limits import (
    DEFAULT_OVERLAP_SECONDS,
    MAX_OVERLAP_SECONDS,
    MIN_OVERLAP_SECONDS,
    SERVER_CERT_MAX_DAYS,
)

if TYPE_CHECKING:
    from trailwarden.manager.config import ManagerConfig

EXIT_NOT_RENEWED = 3
"""`ca finish` refused: agents still hold a certificate of the retiring CA."""


def add_certificate_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cert = sub.add_parser("cert", help="the manager's server certificate")
    cert_sub = cert.add_subparsers(dest="cert_command", required=True)
    renew = cert_sub.add_parser(
        "renew",
        help="issue a new server certificate from the manager's CA (the running manager "
        "serves it from its next connection on)",
    )
    renew.add_argument("--home", required=True, type=Path, help="manager home folder")
    renew.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="NAME",
        help="host name or IP address the certificate answers to (repeat; default: the "
        "current certificate's names)",
    )
    renew.add_argument(
        "--days",
        type=int_in(1, SERVER_CERT_MAX_DAYS),
        default=SERVER_CERT_MAX_DAYS,
        help=f"validity in days, 1..{SERVER_CERT_MAX_DAYS} (default %(default)s)",
    )
    renew.set_defaults(func=_renew)

    ca = sub.add_parser("ca", help="rotate the manager's CA")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    rotate = ca_sub.add_parser(
        "rotate",
        help="make a new CA; agents renew onto it over their links while both are trusted",
    )
    rotate.add_argument("--home", required=True, type=Path, help="manager home folder")
    rotate.add_argument(
        "--overlap",
        type=duration_in(MIN_OVERLAP_SECONDS, MAX_OVERLAP_SECONDS),
        default=DEFAULT_OVERLAP_SECONDS,
        help="how long both CAs are meant to be trusted, 1d..365d (default 30d); shown by "
        "`admin agents`; the overlap ends with `ca finish`",
    )
    rotate.set_defaults(func=_rotate)
    finish = ca_sub.add_parser(
        "finish", help="stop trusting the retiring CA (refused while agents still use it)"
    )
    finish.add_argument("--home", required=True, type=Path, help="manager home folder")
    finish.add_argument(
        "--force",
        action="store_true",
        help="finish although the agents listed have not renewed (they must re-enroll)",
    )
    finish.set_defaults(func=_finish)


def _config(home: Path) -> ManagerConfig:
    from trailwarden.manager.config import load_manager_config

    return load_manager_config(home.expanduser().resolve())


def _renew(args: argparse.Namespace) -> int:
    from trailwarden.manager.pki.actions import local_actor, renew_server_certificate

    config = _config(args.home)
    result = renew_server_certificate(config, args.server_name, args.days, local_actor())
    print(f"server certificate: {config.pki_dir / 'server.pem'} (key server.key, 0600)")
    print(f"names:              {', '.join(result.names)}")
    print(f"expires:            {result.not_after:%Y-%m-%d %H:%M} UTC")
    print(f"SHA-256:            {result.fingerprint}")
    print(
        "console:            "
        + (
            "renewed too (it serves this certificate)"
            if result.console_renewed
            else "not changed ([console] tls_cert names its own certificate)"
        )
    )
    print("the running manager serves it from its next connection on; no restart needed")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from trailwarden.manager.pki.actions import local_actor, rotate_ca

    config = _config(args.home)
    rotation = rotate_ca(config, args.overlap, local_actor())
    print(f"new CA SHA-256:      {rotation.new_ca_sha256}")
    print(f"retiring CA SHA-256: {rotation.retiring_ca_sha256}")
    print(f"overlap ends:        {_ms(rotation.overlap_ends_ms)} UTC")
    print("connected agents are renewed over their links; watch: trailwarden admin agents")
    print(f"then: trailwarden manager ca finish --home {config.home}")
    return 0


def _finish(args: argparse.Namespace) -> int:
    from trailwarden.manager.pki.actions import finish_rotation, local_actor

    config = _config(args.home)
    result = finish_rotation(config, args.force, local_actor())
    for agent in result.not_renewed:
        print(f"not renewed: {agent.id}  {agent.name}  (last seen {_ms(agent.last_seen_ms)})")
    if not result.finished:
        print(
            f"refused: {len(result.not_renewed)} agent(s) still hold a certificate of the "
            "retiring CA; let them connect and renew, or re-run with --force (they will have "
            "to re-enroll)"
        )
        return EXIT_NOT_RENEWED
    print(f"CA rotation finished: only the CA {result.new_ca_sha256} is trusted now")
    print(f"enrollment pin from now on: --ca-sha256 {result.new_ca_sha256}")
    return 0


def _ms(value: int) -> str:
    if not value:
        return "never"
    return f"{dt.datetime.fromtimestamp(value / 1000, dt.UTC):%Y-%m-%d %H:%M}"
