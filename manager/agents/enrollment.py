"""Enrollment service: token + CSR → signed agent certificate (server-authenticated TLS port).

The agent keeps its private key; we certify the public key in its CSR, with the agent ID in a
URI SAN — the only place identity is ever read from. Failed attempts are rate-limited per peer
address so tokens cannot be guessed, and every outcome is logged without the token.

The port is unauthenticated, so what a stranger can make the manager hold is bounded before any
token is checked: a request may be at most ``MAX_REQUEST_BYTES`` (gRPC refuses a longer message
from its length prefix, before buffering it), at most ``MAX_CONCURRENT_CALLS`` calls run at once
(more are refused RESOURCE_EXHAUSTED at once), a connection may carry ``MAX_STREAMS_PER_CONNECTION``
calls, and one address may make ``ATTEMPTS_ALLOWED`` attempts a minute and hold
``IN_FLIGHT_PER_ADDRESS`` at a time. (gRPC Python shows a server interceptor no peer address, so
the per-address checks run first thing in the handler, after the at most 64 KiB message.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from typing import Any

import grpc

from trailwarden.common import channels, tls
from trailwarden.common.errors import EnrollmentError, PkiError, TokenError
from trailwarden.common.wire import enrollment_pb2, enrollment_pb2_grpc
from trailwarden.manager.agents.certificates import AgentCertificates, CertificateInfo
from trailwarden.manager.agents.registry import Registry, check_agent_name
from trailwarden.manager.pki.live import LivePki

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
"""The largest enrollment request accepted (a CSR and a token are a few KB)."""
MAX_CONCURRENT_CALLS = 16
"""Enrollment calls served at once; more are refused at once (RESOURCE_EXHAUSTED)."""
MAX_STREAMS_PER_CONNECTION = 4
"""Concurrent calls one TLS connection may carry (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)."""
ATTEMPTS_ALLOWED = 120
"""Enrollment attempts (any outcome) one address may make per FAILURE_WINDOW_SECONDS."""
IN_FLIGHT_PER_ADDRESS = 4
"""Enrollment calls one address may have running at once."""
FAILURES_ALLOWED = 10
"""Failed enrollments one address may make per FAILURE_WINDOW_SECONDS before being refused."""
FAILURE_WINDOW_SECONDS = 60.0


class FailureLimiter:
    """Counts failed attempts per peer address inside a sliding window."""

    def __init__(
        self, allowed: int = FAILURES_ALLOWED, window: float = FAILURE_WINDOW_SECONDS
    ) -> None:
        self.allowed = allowed
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _trim(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        return len(self._trim(key, time.monotonic())) >= self.allowed

    def fail(self, key: str) -> None:
        self._trim(key, time.monotonic()).append(time.monotonic())
        if len(self._failures) > 100_000:  # bound memory under a spray of addresses
            self._failures.clear()


def server_options() -> list[tuple[str, Any]]:
    """gRPC options of the enrollment server: the link's keepalive, small messages."""
    return [
        *channels.SERVER_KEEPALIVE_OPTIONS,
        ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ("grpc.max_send_message_length", channels.MAX_MESSAGE_BYTES),
        ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
    ]


def _host(peer: str) -> str:
    address = peer.split(":", 1)[1] if peer.startswith(("ipv4:", "ipv6:")) else peer
    return address.rsplit(":", 1)[0]


class EnrollmentService(enrollment_pb2_grpc.EnrollmentServicer):
    def __init__(
        self,
        registry: Registry,
        pki: LivePki,
        link_address: str,
        limiter: FailureLimiter | None = None,
    ) -> None:
        self.registry = registry
        self.pki = pki
        """Read at each enrollment: a renewal or CA rotation applies without a restart."""
        self.certificates = AgentCertificates(registry.db)
        self.link_address = link_address
        self.limiter = limiter or FailureLimiter()
        self.attempts = FailureLimiter(ATTEMPTS_ALLOWED, FAILURE_WINDOW_SECONDS)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._lock = asyncio.Lock()  # one enrollment at a time: name checks stay consistent

    async def Enroll(
        self, request: enrollment_pb2.EnrollRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> enrollment_pb2.EnrollResponse:
        peer = _host(context.peer())
        if self.limiter.blocked(peer):
            log.warning("stage=enroll refused peer=%s reason=too many failed attempts", peer)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many failed enrollment attempts; wait a minute",
            )
        if self.attempts.blocked(peer) or self._in_flight.get(peer, 0) >= IN_FLIGHT_PER_ADDRESS:
            log.warning("stage=enroll refused peer=%s reason=too many attempts", peer)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "too many enrollment attempts; wait a minute"
            )
        self.attempts.fail(peer)  # every attempt counts here, whatever its outcome
        self._in_flight[peer] += 1
        try:
            return await self._serve(request, context, peer)
        finally:
            self._in_flight[peer] -= 1
            if not self._in_flight[peer]:
                del self._in_flight[peer]

    async def _serve(
        self,
        request: enrollment_pb2.EnrollRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        peer: str,
    ) -> enrollment_pb2.EnrollResponse:
        async with self._lock:
            try:
                response = self._enroll(request, peer)
            except TokenError as exc:
                self.limiter.fail(peer)
                log.warning(
                    "stage=enroll refused peer=%s name=%s reason=%s", peer, request.name, exc
                )
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            except (EnrollmentError, PkiError) as exc:
                self.limiter.fail(peer)
                log.warning(
                    "stage=enroll refused peer=%s name=%s reason=%s", peer, request.name, exc
                )
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        log.info("stage=enroll agent=%s name=%s peer=%s", response.agent_id, request.name, peer)
        return response

    def _enroll(
        self, request: enrollment_pb2.EnrollRequest, peer: str
    ) -> enrollment_pb2.EnrollResponse:
        name = check_agent_name(request.name.strip())
        csr = tls.load_csr(bytes(request.csr_pem))
        existing = self.registry.active_by_name(name)
        if existing is not None and not request.force:
            raise EnrollmentError(
                f"an agent named {name!r} is already enrolled (ID {existing.id}); "
                f"re-run with --force and a token issued for that name to replace it"
            )
        try:
            group = self.registry.consume_token(
                request.token, name, existing.id if existing else ""
            ).group
        except TokenError as exc:
            if existing is not None:
                self.registry.audit(
                    f"peer:{peer}", "agent.replace.refused", existing.id, f"name={name}: {exc}"
                )
            raise
        agent_id = self.registry.new_agent_id()
        material = self.pki.material
        cert = tls.issue_client_cert(
            material.ca_key,
            material.ca_cert,
            csr.public_key(),
            tls.Role.AGENT,
            agent_id,
            f"agent {name}",
        )
        self.registry.add_agent(
            agent_id=agent_id,
            name=name,
            hostname=request.hostname[:255],
            fingerprint=tls.fingerprint(cert),
            groups=[group] if group else [],
            version=request.agent_version[:64],
            replace=existing.id if existing else None,
        )
        self.certificates.record(
            agent_id,
            CertificateInfo(
                tls.fingerprint(cert), tls.not_after_ms(cert), tls.fingerprint(material.ca_cert)
            ),
        )
        return enrollment_pb2.EnrollResponse(
            agent_id=agent_id,
            certificate_pem=tls.cert_to_pem(cert),
            # Every CA the manager trusts: during a rotation the server certificate still
            # comes from the retiring CA while this certificate comes from the new one.
            ca_chain_pem=material.trust_pem,
            link_address=self.link_address,
            groups=[group] if group else [],
        )
