"""`trailwarden agent enroll`: key on this host, CA pinned by fingerprint, CSR → certificate."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc

from trailwarden import agent as agent_package
from trailwarden.agent.config import CONFIG_FILE, render_agent_toml
from trailwarden.agent.identity import CERT_FILE, AgentIdentity
from trailwarden.common import channels, tls
from trailwarden.common.errors import EnrollmentError, PkiError, TokenError
from trailwarden.common.wire import enrollment_pb2, enrollment_pb2_grpc

log = logging.getLogger(__name__)
ENROLL_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class EnrollResult:
    agent_id: str
    link_address: str
    groups: tuple[str, ...]


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise EnrollmentError(f"--manager {address!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def enroll(
    home: Path,
    manager: str,
    token: str,
    ca_sha256: str,
    name: str | None = None,
    force: bool = False,
) -> EnrollResult:
    home = home.expanduser().resolve()
    name = name or socket.gethostname()
    if (home / CERT_FILE).exists() and not force:
        raise EnrollmentError(
            f"{home} already holds an enrolled agent; pass --force to enroll again"
        )
    host, port = split_address(manager)
    ca_pem = tls.fetch_pinned_ca(host, port, ca_sha256)
    key = tls.new_private_key()
    request = enrollment_pb2.EnrollRequest(
        token=token,
        csr_pem=tls.build_csr(key, name),
        name=name,
        hostname=socket.gethostname(),
        agent_version=agent_package.__version__,
        force=force,
    )
    channel = grpc.secure_channel(
        manager, channels.client_channel_credentials(ca_pem), options=channels.channel_options()
    )
    try:
        response = enrollment_pb2_grpc.EnrollmentStub(channel).Enroll(
            request, timeout=ENROLL_TIMEOUT_SECONDS
        )
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details()
        if code == grpc.StatusCode.PERMISSION_DENIED:
            raise TokenError(f"enrollment refused: {details}") from exc
        if code == grpc.StatusCode.UNAVAILABLE:
            raise EnrollmentError(
                f"manager enrollment service at {manager} unreachable: {details}"
            ) from exc
        raise EnrollmentError(f"enrollment refused ({code.name}): {details}") from exc
    finally:
        channel.close()
    cert = tls.load_cert(response.certificate_pem, "issued certificate")
    identity = tls.cert_identity(cert)
    if identity != (tls.Role.AGENT, response.agent_id):
        raise EnrollmentError("the manager returned a certificate for another identity")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    AgentIdentity(
        agent_id=response.agent_id,
        name=name,
        key_pem=tls.key_to_pem(key),
        cert_pem=bytes(response.certificate_pem),
        ca_pem=_trust_bundle(ca_pem, bytes(response.ca_chain_pem)),
    ).save(home, manager)
    config = home / CONFIG_FILE
    # Reach the link on the host the admin told us to use for enrollment: the manager's own
    # idea of its name may not resolve from here (NAT, split DNS). Only the port is taken.
    link_port = response.link_address.rpartition(":")[2] or str(port - 1)
    link_address = f"{host}:{link_port}"
    if not config.exists():
        config.write_text(render_agent_toml(name, link_address))
    log.info("stage=enroll agent=%s name=%s manager=%s", response.agent_id, name, manager)
    return EnrollResult(response.agent_id, link_address, tuple(response.groups))


def _trust_bundle(pinned_pem: bytes, bundle_pem: bytes) -> bytes:
    """What the agent trusts: the manager's CA bundle when it holds the pinned CA (during a
    CA rotation it holds the new CA too, which the manager's server certificate moves to at
    `ca finish`), else the pinned CA alone. The bundle came over a channel verified with the
    pinned CA, so trusting it adds nothing the pinned manager did not vouch for."""
    try:
        offered = {tls.fingerprint(cert) for cert in tls.load_certs(bundle_pem)}
    except PkiError:
        return pinned_pem
    return bundle_pem if tls.fingerprint(pinned_pem) in offered else pinned_pem
