"""The agent's link to the manager: spool → manager, acks → spool.

One mutual-TLS bidirectional stream at a time. After the manager's welcome, the sender keeps at
most ``ack_window`` batches, and ``MAX_UNACKED_BYTES`` of records, in flight, oldest first; an
ack deletes the batch from the spool.
When the stream breaks, everything unacked is simply sent again on the next stream (the
manager drops duplicates by CloudTrail eventID), so a crash or restart on either side loses
nothing. Reconnects back off exponentially with full jitter, so a fleet does not stampede a
manager that comes back.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.renewal import CertificateRenewer
from trailwarden.agent.spool import Spool
from trailwarden.common import channels
from trailwarden.common.errors import CredentialsError, SpoolError
from trailwarden.common.wire import REFUSAL_METADATA_KEY, link_pb2, link_pb2_grpc
from trailwarden.common.wire.convert import batch_to_wire

log = logging.getLogger(__name__)

BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
HEALTHY_SESSION_SECONDS = 10.0
"""A session that lasted this long resets the backoff."""
WELCOME_TIMEOUT_SECONDS = 30.0
MAX_UNACKED_BYTES = 2 << 20
"""Record bytes sent and not yet acknowledged (one larger batch still goes, alone). Until gRPC
has written them, they are held as messages (and the spool's reads of them) in this process:
with the manager's window of 32 batches of up to 1 MiB that was up to ~100 MiB of the agent's
memory when a backfill starts. A few batches in flight keep the manager busy."""
_END = object()

StatusProvider = Callable[[], link_pb2.AgentStatus]
ConfigHandler = Callable[[link_pb2.ConfigUpdate], link_pb2.ConfigStatus]


@dataclass
class HelloInfo:
    version: str
    hostname: str
    applied_revision: Callable[[], tuple[int, str]] = lambda: (0, "")


class LinkClient:
    def __init__(
        self,
        identity: AgentIdentity,
        address: str,
        spool: Spool,
        hello: HelloInfo,
        *,
        server_name: str = "",
        heartbeat_seconds: float = 15.0,
        status: StatusProvider | None = None,
        on_config: ConfigHandler | None = None,
        on_command: Callable[[link_pb2.Command], None] | None = None,
        on_refused: Callable[[], None] | None = None,
        renewer: CertificateRenewer | None = None,
    ) -> None:
        self.identity = identity
        self.address = address
        self.spool = spool
        self.hello = hello
        self.server_name = server_name
        self.heartbeat_seconds = heartbeat_seconds
        self.status = status or (lambda: link_pb2.AgentStatus())
        self.on_config = on_config
        self.on_command = on_command
        self.renewer = renewer
        """Answers the manager's certificate renewal offers (None: offers are ignored)."""
        self.renewals = 0
        """Certificates renewed over the link by this client."""
        self.on_refused = on_refused or (lambda: None)
        """Called once when the manager refuses this agent for good (the loop then ends)."""
        self.refused = ""
        """Why the manager refuses this agent for good; '' while it does not."""
        self.connected = threading.Event()
        self.config_settled = threading.Event()
        """Set once a session knows the agent runs the config the manager wants: the welcome
        said no update follows, or the update that followed was handled (applied or refused)."""
        self.last_error = ""
        self.sessions = 0
        self.acked_batches = 0
        self.unacked_bytes = 0
        """Record bytes sent on the current stream and not acknowledged yet."""
        self._report = threading.Event()
        self._credentials = channels.client_channel_credentials(
            identity.ca_pem, identity.cert_pem, identity.key_pem
        )

    def report_now(self, timeout: float = 2.0) -> bool:
        """Send a status heartbeat at once (e.g. after a pass); True once it is on its way."""
        self._report.set()
        deadline = time.monotonic() + timeout
        while self._report.is_set() and self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._report.is_set()

    # ---- the reconnect loop ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Keep a session up until ``stop`` is set."""
        backoff = BACKOFF_INITIAL_SECONDS
        while not stop.is_set():
            started = time.monotonic()
            planned = False
            try:
                self._session(stop)
            except grpc.RpcError as exc:
                self.last_error = f"{exc.code().name}: {exc.details()}"
                refusal = refusal_of(exc)
                if refusal:
                    self.refused = f"{exc.details()} ({refusal})"
                    log.error(
                        "stage=send the manager at %s refuses this agent for good: %s; not "
                        "retrying (re-enroll the agent)",
                        self.address,
                        self.refused,
                    )
                    self.on_refused()
                    break
            except LinkProtocolError as exc:
                self.last_error = str(exc)
                planned = isinstance(exc, RenewedReconnect)
            except SpoolError as exc:
                # A spool read or ack failed (disk full, I/O error): end this session and retry
                # like any other failure; unacked batches are resent. Letting it escape would
                # kill the link thread and silently stop all sending.
                self.last_error = f"spool: {exc}"
            finally:
                self.connected.clear()
            if stop.is_set():
                break
            if time.monotonic() - started > HEALTHY_SESSION_SECONDS:
                backoff = BACKOFF_INITIAL_SECONDS
            delay = random.uniform(0, backoff)  # full jitter
            log.log(
                logging.INFO if planned else logging.WARNING,
                "stage=send link to %s down (%s); reconnecting in %.1fs",
                self.address,
                self.last_error or "closed",
                delay,
            )
            stop.wait(delay)
            backoff = min(BACKOFF_MAX_SECONDS, backoff * 2)

    # ---- one session -------------------------------------------------------------------------

    def _session(self, stop: threading.Event) -> None:
        outbox: queue.Queue[Any] = queue.Queue()
        acks: queue.Queue[Any] = queue.Queue()
        channel = grpc.secure_channel(
            self.address, self._credentials, options=channels.channel_options(self.server_name)
        )
        try:
            revision, config_hash = self.hello.applied_revision()
            outbox.put(
                link_pb2.AgentMessage(
                    hello=link_pb2.Hello(
                        agent_version=self.hello.version,
                        hostname=self.hello.hostname,
                        applied_config_revision=revision,
                        applied_config_hash=config_hash,
                        ca_bundle_sha256=hashlib.sha256(self.identity.ca_pem).hexdigest(),
                    )
                )
            )
            responses = link_pb2_grpc.AgentLinkStub(channel).Connect(_drain(outbox))
            receiver = threading.Thread(
                target=self._receive,
                args=(responses, acks, outbox),
                daemon=True,
                name="link-receive",
            )
            receiver.start()
            try:
                self._send(stop, outbox, acks, responses)
            finally:
                outbox.put(_END)
                if stop.is_set():
                    responses.cancel()
                receiver.join(5)
        finally:
            channel.close()

    def _receive(self, responses: Any, acks: queue.Queue[Any], outbox: queue.Queue[Any]) -> None:
        """Reader thread: hands welcome/acks to the sender; applies config and commands."""
        try:
            for message in responses:
                kind = message.WhichOneof("body")
                if kind == "welcome":
                    acks.put(("welcome", message.welcome))
                elif kind == "ack":
                    acks.put(("ack", list(message.ack.sequences)))
                elif kind == "config" and self.on_config is not None:
                    status = self.on_config(message.config)
                    outbox.put(link_pb2.AgentMessage(config_status=status))
                    self.config_settled.set()
                elif kind == "command" and self.on_command is not None:
                    self.on_command(message.command)
                elif kind == "renew" and self.renewer is not None:
                    outbox.put(self.renewer.request(self.identity, message.renew))
                elif kind == "certificate" and self.renewer is not None:
                    self._install(message.certificate, acks)
            acks.put(("closed", None))
        except grpc.RpcError as exc:
            acks.put(("error", exc))

    def _install(self, issued: link_pb2.CertificateIssued, acks: queue.Queue[Any]) -> None:
        """Store a renewed certificate, then end this session: the next one uses it."""
        assert self.renewer is not None
        try:
            identity = self.renewer.install(self.identity, issued)
        except (CredentialsError, OSError) as exc:
            log.error("stage=send certificate renewal failed, keeping the current one: %s", exc)
            return
        self.identity = identity
        self._credentials = channels.client_channel_credentials(
            identity.ca_pem, identity.cert_pem, identity.key_pem
        )
        self.renewals += 1
        acks.put(("renewed", None))

    def _send(
        self,
        stop: threading.Event,
        outbox: queue.Queue[Any],
        acks: queue.Queue[Any],
        responses: Any,
    ) -> None:
        kind, value = acks.get(timeout=WELCOME_TIMEOUT_SECONDS)
        if kind == "error":
            raise value
        if kind != "welcome":
            raise LinkProtocolError("manager closed the link before welcoming us")
        window = max(1, value.ack_window)
        if not value.config_follows or self.on_config is None:
            self.config_settled.set()
        self.sessions += 1
        self.connected.set()
        self.last_error = ""
        log.info(
            "stage=send connected to %s as agent %s (window %d)",
            self.address,
            value.agent_id,
            window,
        )
        in_flight: dict[int, int] = {}
        """sequence -> record bytes, of the batches sent and not yet acknowledged"""
        unacked_bytes = self.unacked_bytes = 0
        last_sent = 0
        next_heartbeat = time.monotonic()
        while not stop.is_set():
            if self._report.is_set() or time.monotonic() >= next_heartbeat:
                self._report.clear()
                outbox.put(
                    link_pb2.AgentMessage(
                        heartbeat=link_pb2.Heartbeat(
                            time_unix_ms=int(time.time() * 1000), status=self.status()
                        )
                    )
                )
                next_heartbeat = time.monotonic() + self.heartbeat_seconds
            room = False
            while len(in_flight) < window and (not in_flight or unacked_bytes < MAX_UNACKED_BYTES):
                room = True
                # One at a time: a batch is read from the spool only when it may be sent.
                batches = self.spool.pending(after_sequence=last_sent, limit=1)
                if not batches:
                    break
                batch = batches[0]
                size = sum(map(len, batch.records))
                outbox.put(link_pb2.AgentMessage(batch=batch_to_wire(batch)))
                in_flight[batch.sequence] = size
                unacked_bytes += size
                self.unacked_bytes = unacked_bytes
                last_sent = batch.sequence
                room = False
            try:
                kind, value = acks.get(timeout=0.05 if room else 0.5)
            except queue.Empty:
                if room:
                    self.spool.wait_for_batches(last_sent, 0.2)
                continue
            if kind == "ack":
                self.spool.ack(value)
                for sequence in value:
                    unacked_bytes -= in_flight.pop(sequence, 0)
                    self.unacked_bytes = unacked_bytes
                self.acked_batches += len(value)
            elif kind == "error":
                raise value
            elif kind == "closed":
                raise LinkProtocolError("manager ended the stream")
            elif kind == "renewed":
                raise RenewedReconnect("reconnecting with the renewed certificate")


def refusal_of(exc: grpc.RpcError) -> str:
    """The manager's "refused for good" reason on a failed link call, or ''."""
    if not hasattr(exc, "code") or exc.code() != grpc.StatusCode.PERMISSION_DENIED:
        return ""
    metadata: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for item in metadata or ():
        if item[0] == REFUSAL_METADATA_KEY:
            return str(item[1])
    return ""


class LinkProtocolError(Exception):
    """The manager did something the protocol does not allow (internal to the reconnect loop)."""


class RenewedReconnect(LinkProtocolError):
    """The session ends on purpose: the next one uses the certificate just renewed."""


def _drain(outbox: queue.Queue[Any]) -> Iterator[Any]:
    while True:
        item = outbox.get()
        if item is _END:
            return
        yield item
