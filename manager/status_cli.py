"""`trailwarden manager status --home DIR`: is the manager on this host serving, and ready?

Asks the running manager, never its database: the gRPC health service on the link port (with
the admin credentials the home holds) and, when ``[metrics]`` is set, ``/readyz``. Exit 0 when
it serves and is ready, 1 otherwise — usable from scripts and monitoring checks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import grpc

from trailwarden.common import channels
from trailwarden.common.observability.probe import (
    READY,
    add_status_parser,
    readiness_line,
    readiness_section,
)
from trailwarden.manager.config import CREDENTIALS_FILE, ManagerConfig, load_manager_config

HEALTH_TIMEOUT_SECONDS = 5.0


def add_status_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_status_parser(
        sub, "is the manager on this host serving and ready?", "manager home folder", _status
    )


def _link_health(home: Path, listen: str) -> tuple[str, str]:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from trailwarden.common import tls  # cryptography: not for every command's start-up

    host, _, port = listen.rpartition(":")
    address = f"{'127.0.0.1' if host in ('0.0.0.0', '', '::') else host}:{port}"
    bundle = tls.AdminBundle.load(home / CREDENTIALS_FILE)
    credentials = channels.client_channel_credentials(
        bundle.ca_pem, bundle.cert_pem, bundle.key_pem
    )
    with grpc.secure_channel(
        address, credentials, options=channels.channel_options("localhost")
    ) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_TIMEOUT_SECONDS
            )
        except grpc.RpcError as exc:
            return "not answering", f"{address}: {channels.describe_rpc_error(exc)}"
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return name.lower().replace("_", " "), address


def _server_certificate(config: ManagerConfig) -> dict[str, Any]:
    """The server certificate in the home (the one the manager serves: it follows the file)."""
    import time

    from trailwarden.common import tls

    path = config.pki_dir / "server.pem"
    cert = tls.load_cert(path.read_bytes(), str(path))
    not_after = tls.not_after_ms(cert)
    return {
        "path": str(path),
        "names": tls.server_names(cert),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": int((not_after - time.time() * 1000) // 86_400_000),
    }


def _status(args: argparse.Namespace) -> int:
    config = load_manager_config(args.home)
    link_state, link_detail = _link_health(args.home, config.link.listen)
    report: dict[str, Any] = {
        "manager": config.name,
        "link": {"state": link_state, "detail": link_detail},
    }
    report["server_certificate"] = certificate = _server_certificate(config)
    readiness = readiness_section(config.metrics)
    if readiness is not None:
        report["readiness"] = readiness
    healthy = link_state == "serving" and (readiness is None or readiness["state"] == READY)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"manager {config.name}: {'ok' if healthy else 'NOT OK'}")
        print(f"  link (gRPC health): {link_state} ({link_detail})")
        days_left = certificate["days_left"]
        soon = " — renew it: trailwarden manager cert renew" if days_left < 30 else ""
        print(
            f"  server certificate: expires {certificate['not_after']} (in {days_left} days){soon}"
        )
        print(readiness_line(readiness, 20))
    return 0 if healthy else 1
