"""Client side of the Admin API: credentials bundle → authenticated stub.

Every `trailwarden admin …` command goes through here: the bundle (written by `manager init`)
names the manager address and holds the admin certificate, key and CA. Found from
``--credentials FILE``, else ``$TRAILWARDEN_CREDENTIALS``, else
``~/.trailwarden/admin.credentials``.
Admin commands never open the manager's database: everything goes over mutual TLS.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from trailwarden.common import channels
from trailwarden.common.channels import describe_rpc_error
from trailwarden.common.errors import CredentialsError
from trailwarden.common.wire import admin_pb2_grpc

CREDENTIALS_ENV = "TRAILWARDEN_CREDENTIALS"
DEFAULT_CREDENTIALS = Path("~/.trailwarden/admin.credentials")
RPC_TIMEOUT_SECONDS = 30.0


def credentials_parent() -> argparse.ArgumentParser:
    """Options every admin command shares; use as ``parents=[credentials_parent()]``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--credentials",
        metavar="FILE",
        help=f"admin credentials bundle (default: ${CREDENTIALS_ENV} or {DEFAULT_CREDENTIALS})",
    )
    parent.add_argument("--json", action="store_true", help="machine-readable output")
    return parent


def credentials_path(explicit: str | None) -> Path:
    chosen = explicit or os.environ.get(CREDENTIALS_ENV) or str(DEFAULT_CREDENTIALS)
    return Path(chosen).expanduser()


@contextmanager
def admin_stub(args: argparse.Namespace) -> Iterator[admin_pb2_grpc.AdminStub]:
    """An Admin stub over mutual TLS with the admin certificate from the bundle."""
    # Imported here, not at the top: every `trailwarden` command (`agent run` too) registers the
    # admin subcommands through this module, and common/tls.py loads cryptography (~10 MiB).
    from trailwarden.common import tls

    path = credentials_path(getattr(args, "credentials", None))
    bundle = tls.AdminBundle.load(path)
    channel = grpc.secure_channel(
        bundle.address,
        channels.client_channel_credentials(bundle.ca_pem, bundle.cert_pem, bundle.key_pem),
        options=channels.channel_options(bundle.server_name),
    )
    try:
        yield admin_pb2_grpc.AdminStub(channel)
    finally:
        channel.close()


__all__ = [
    "CREDENTIALS_ENV",
    "RPC_TIMEOUT_SECONDS",
    "CredentialsError",
    "admin_stub",
    "credentials_parent",
    "credentials_path",
    "describe_rpc_error",
]
