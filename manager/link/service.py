"""AgentLink servicer: one bidirectional stream per agent, acks only after commit.

Identity comes from the verified client certificate (URI SAN) and is checked against the
registry on every new stream — unknown, revoked or re-issued certificates are refused, which is
how revocation works without CRLs. The agent may have at most ``ack_window`` batches
unacknowledged; batches are analysed and committed in order (the next batch's analysis
overlapping the previous batch's commit) and acknowledged after their transaction commits. If
the store fails, the stream is closed without an ack and the agent resends when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

import grpc

from trailwarden.common.errors import NotFoundError, PipelineError, PkiError, StoreError
from trailwarden.common.model import AgentRef, RecordBatch
from trailwarden.common.wire import REFUSAL_METADATA_KEY, link_pb2, link_pb2_grpc
from trailwarden.common.wire.convert import batch_from_wire
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.link.peer import PeerKind, peer_certificate_pem, peer_identity
from trailwarden.manager.link.renewal import CertificateRenewal
from trailwarden.manager.link.sessions import Session, Sessions
from trailwarden.manager.pipeline.batch_analysis import BatchAnalysis
from trailwarden.manager.pipeline.ingest import Ingest

log = logging.getLogger(__name__)

HELLO_CONFIG_WAIT_SECONDS = 2.0
"""Longest the welcome waits for the agent's desired config to be looked up."""


def _send_late_update(
    session: Session, lookup: asyncio.Future[link_pb2.ManagerMessage | None]
) -> None:
    if lookup.cancelled():
        return
    error = lookup.exception()
    if error is not None:
        log.warning("stage=config agent=%s config lookup failed: %s", session.agent.id, error)
        return
    update = lookup.result()
    if update is not None and not session.closed.is_set():
        session.send(update)


HELLO_TIMEOUT_SECONDS = 30.0
StatusToJson = Callable[[link_pb2.AgentStatus], str]


MAX_STATUS_JSON_BYTES = 256 * 1024
"""The most of an agent's reported status the registry keeps (a real one is a few KB); a larger
one is replaced by a note, so `admin agents` can never be pushed past the message limit."""


def status_to_json(status: link_pb2.AgentStatus) -> str:
    from google.protobuf import json_format

    text = json.dumps(
        json_format.MessageToDict(status, preserving_proto_field_name=True), sort_keys=True
    )
    if len(text) > MAX_STATUS_JSON_BYTES:
        return json.dumps({"omitted": f"status of {len(text)} bytes, over {MAX_STATUS_JSON_BYTES}"})
    return text


class LinkService(link_pb2_grpc.AgentLinkServicer):
    def __init__(
        self,
        registry: Registry,
        sessions: Sessions,
        ingest: Ingest,
        ingest_executor: Executor,
        *,
        ack_window: int,
        max_connections: int,
        on_hello: Callable[[Session, link_pb2.Hello], Awaitable[link_pb2.ManagerMessage | None]]
        | None = None,
        on_config_status: Callable[[Session, link_pb2.ConfigStatus], None] | None = None,
        renewal: CertificateRenewal | None = None,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self.ingest = ingest
        self.ingest_executor = ingest_executor
        self.ack_window = ack_window
        self.max_connections = max_connections
        self.on_hello = on_hello
        self.on_config_status = on_config_status
        self.renewal = renewal

    async def Connect(
        self,
        request_iterator: AsyncIterator[link_pb2.AgentMessage],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[link_pb2.ManagerMessage]:
        identity = peer_identity(context)
        if identity is None or identity.kind is not PeerKind.AGENT:
            who = "no TrailWarden certificate" if identity is None else identity.kind.value
            log.warning("stage=link refused peer=%s reason=not an agent (%s)", context.peer(), who)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"the link needs an agent certificate ({who})"
            )
        assert identity is not None
        try:
            record = self.registry.get(identity.id)
        except NotFoundError:
            record = None
        if (
            record is None
            or record.revoked
            or (
                record.cert_fingerprint != identity.fingerprint
                and not self._renewed(record.id, identity.fingerprint)
            )
        ):
            reason = (
                "unknown agent"
                if record is None
                else "agent revoked"
                if record.revoked
                else "certificate superseded"
            )
            log.warning(
                "stage=link refused agent=%s peer=%s reason=%s",
                identity.id,
                identity.address,
                reason,
            )
            # Tells the agent that retrying cannot help (it exits instead of retrying forever).
            context.set_trailing_metadata(((REFUSAL_METADATA_KEY, reason.split()[-1]),))
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        assert record is not None
        if len(self.sessions) >= self.max_connections and not self.sessions.is_connected(record.id):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "manager at its connection limit; retry later"
            )
        session = Session(agent=AgentRef(record.id, record.name), address=identity.address)
        self.sessions.attach(session)
        log.info(
            "stage=link connected agent=%s name=%s peer=%s",
            record.id,
            record.name,
            identity.address,
        )
        reader = asyncio.create_task(
            self._read(request_iterator, session, peer_certificate_pem(context))
        )
        try:
            while True:
                message = await session.outbox.get()
                if message is None:
                    break
                yield message
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                exc = reader.exception()
                code = (
                    grpc.StatusCode.UNAVAILABLE
                    if isinstance(exc, StoreError)
                    else grpc.StatusCode.INVALID_ARGUMENT
                )
                await context.abort(code, str(exc))
            if session.close_reason and session.close_reason != "agent closed the stream":
                await context.abort(grpc.StatusCode.UNAVAILABLE, session.close_reason)
        finally:
            reader.cancel()
            self.sessions.detach(session)
            log.info(
                "stage=link disconnected agent=%s reason=%s",
                record.id,
                session.close_reason or "stream ended",
            )
            await self._bookkeeping(self.registry.record_seen, record.id)

    def _renewed(self, agent_id: str, fingerprint: str) -> bool:
        """The agent presents the certificate it was issued over the link, not yet used."""
        return self.renewal is not None and self.renewal.certificates.is_pending(
            agent_id, fingerprint
        )

    async def _certificate_seen(self, session: Session, peer_pem: bytes, bundle: str) -> None:
        if self.renewal is None:
            return
        try:
            await asyncio.to_thread(self.renewal.connected, session, peer_pem, bundle)
        except (StoreError, PkiError) as exc:
            log.warning("stage=link agent=%s certificate not recorded: %s", session.agent.id, exc)
            return
        self.renewal.offer_if_due(session)

    async def _read(
        self, requests: AsyncIterator[link_pb2.AgentMessage], session: Session, peer_pem: bytes
    ) -> None:
        agent = session.agent
        pending: asyncio.Queue[RecordBatch | None] = asyncio.Queue(maxsize=self.ack_window)
        worker = asyncio.create_task(self._process(pending, session))
        try:
            first = await asyncio.wait_for(anext(requests), HELLO_TIMEOUT_SECONDS)
            if first.WhichOneof("body") != "hello":
                raise ValueError("the first message on a link must be hello")
            await self._bookkeeping(
                self.registry.record_hello,
                agent.id,
                address=session.address,
                version=first.hello.agent_version,
                hostname=first.hello.hostname,
                applied_revision=first.hello.applied_config_revision,
                applied_hash=first.hello.applied_config_hash,
            )
            await self._welcome(session, first.hello)
            await self._certificate_seen(session, peer_pem, first.hello.ca_bundle_sha256)
            async for message in requests:
                kind = message.WhichOneof("body")
                if kind == "batch":
                    if session.draining:
                        continue  # not acknowledged: the agent resends it to the next manager
                    if pending.full():
                        raise ValueError(
                            f"agent exceeded its window of {self.ack_window} unacked batches"
                        )
                    pending.put_nowait(batch_from_wire(message.batch))
                    session.queued += 1
                elif kind == "heartbeat":
                    await self._bookkeeping(
                        self.registry.record_seen,
                        agent.id,
                        status_to_json(message.heartbeat.status),
                    )
                elif kind == "config_status" and self.on_config_status is not None:
                    self.on_config_status(session, message.config_status)
                elif kind == "cert_request" and self.renewal is not None:
                    csr = bytes(message.cert_request.csr_pem)
                    session.send(await asyncio.to_thread(self.renewal.sign, session, csr))
            await pending.put(None)
            await worker
            session.close("agent closed the stream")
        except (ValueError, StopAsyncIteration, TimeoutError) as exc:
            log.warning("stage=link agent=%s protocol error: %s", agent.id, exc)
            worker.cancel()
            session.close(f"protocol error: {exc}")
            raise
        except asyncio.CancelledError:
            worker.cancel()
            raise
        except Exception as exc:
            worker.cancel()
            session.close(str(exc))
            raise

    async def _welcome(self, session: Session, hello: link_pb2.Hello) -> None:
        """Welcome the agent, saying whether a config update follows (a one-pass agent waits
        for it before its pass), then send that update.

        The config the agent should run is looked up first, for at most
        ``HELLO_CONFIG_WAIT_SECONDS``: a busy database delays the welcome that long, never
        longer; the update is then sent whenever the lookup ends."""
        if self.on_hello is None:
            lookup = None
            update = None
        else:
            lookup = asyncio.ensure_future(self.on_hello(session, hello))
            done, _ = await asyncio.wait({lookup}, timeout=HELLO_CONFIG_WAIT_SECONDS)
            update = lookup.result() if lookup in done else None
        pending = lookup is not None and not lookup.done()
        session.send(
            link_pb2.ManagerMessage(
                welcome=link_pb2.Welcome(
                    agent_id=session.agent.id,
                    ack_window=self.ack_window,
                    config_follows=update is not None or pending,
                )
            )
        )
        if update is not None:
            session.send(update)
        elif lookup is not None and pending:
            lookup.add_done_callback(lambda task: _send_late_update(session, task))

    @staticmethod
    async def _bookkeeping(call: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Registry updates (last seen, status) off the event loop, and best effort: a busy
        database must slow acks, not cut agents off."""
        try:
            await asyncio.to_thread(call, *args, **kwargs)
        except StoreError as exc:
            log.warning("stage=link registry update skipped: %s", exc)

    async def _process(self, pending: asyncio.Queue[RecordBatch | None], session: Session) -> None:
        """Analyse the agent's batches in order and hand them to ``_commit_in_order``.

        The next batch is analysed while the previous one commits, so one agent's backfill keeps
        an analysis worker and the committing thread busy at once; commits and acks still follow
        the agent's order. Events of batches analysed but not yet committed count as seen when
        the next batch is analysed, as they will once committed: a record resent in the next
        batch is not analysed (or correlated) twice. If a commit fails the link closes, and
        every batch after it is dropped unacknowledged, to be resent.
        """
        analysed: asyncio.Queue[tuple[RecordBatch, BatchAnalysis] | None] = asyncio.Queue(1)
        uncommitted: deque[frozenset[tuple[str, str]]] = deque()
        committer = asyncio.create_task(self._commit_in_order(analysed, uncommitted, session))
        try:
            while not session.closed.is_set():
                batch = await pending.get()
                if batch is None:
                    break
                also_seen = frozenset().union(*uncommitted) if uncommitted else frozenset()
                try:
                    result = await asyncio.wrap_future(
                        self.ingest.analyse(session.agent, batch, also_seen)
                    )
                except Exception as exc:
                    _not_acknowledged(session, batch, exc)
                    break
                uncommitted.append(
                    frozenset((e.event_key, e.recipient_account) for e in result.new_events)
                )
                await analysed.put((batch, result))
                # Not held while waiting for the next batch: an idle link kept its last batch and
                # its alerts' documents alive (~40 KB an agent, ~40 MiB with 1,000 agents).
                del batch, result
            await analysed.put(None)
            await committer
        finally:
            committer.cancel()

    async def _commit_in_order(
        self,
        analysed: asyncio.Queue[tuple[RecordBatch, BatchAnalysis] | None],
        uncommitted: deque[frozenset[tuple[str, str]]],
        session: Session,
    ) -> None:
        """Commit each analysed batch and acknowledge it; after a failure, only drain."""
        while True:
            item = await analysed.get()
            if item is None:
                return
            if not session.closed.is_set():  # else an earlier batch failed: all are resent
                await self._commit_one(session, uncommitted, *item)
            del item  # not held while the link idles (see _process)

    async def _commit_one(
        self,
        session: Session,
        uncommitted: deque[frozenset[tuple[str, str]]],
        batch: RecordBatch,
        result: BatchAnalysis,
    ) -> None:
        session.busy = True
        try:
            stored = await asyncio.get_running_loop().run_in_executor(
                self.ingest_executor, self.ingest.commit, session.agent, batch, result
            )
        except Exception as exc:
            _not_acknowledged(session, batch, exc)
            return
        finally:
            session.busy = False
        session.queued -= 1
        uncommitted.popleft()
        log.debug(
            "stage=store agent=%s seq=%d records=%d new=%d dup=%d alerts=%d",
            session.agent.id,
            batch.sequence,
            stored.records,
            stored.new_events,
            stored.duplicates,
            stored.alerts,
        )
        session.send(link_pb2.ManagerMessage(ack=link_pb2.Ack(sequences=[batch.sequence])))
        if session.draining and not session.queued:
            session.close("manager shutting down")


def _not_acknowledged(session: Session, batch: RecordBatch, exc: Exception) -> None:
    """Close the link without acknowledging ``batch``: the agent resends it on reconnecting."""
    if isinstance(exc, StoreError | PipelineError):
        log.error(
            "stage=store agent=%s where=%s seq=%d not committed, no ack: %s",
            session.agent.id,
            batch.source.location,
            batch.sequence,
            exc,
        )
        session.close(f"batch {batch.sequence} not acknowledged: {exc}")
        return
    # A bug on one batch (e.g. the RecursionError a record nested ~955 deep raised in the
    # store commit) used to end the link's task silently: the stream stayed open and nothing
    # more was ever acknowledged. Log it and close; the agent resends.
    log.error(
        "stage=store agent=%s where=%s seq=%d failed, no ack",
        session.agent.id,
        batch.source.location,
        batch.sequence,
        exc_info=exc,
    )
    session.close(
        f"batch {batch.sequence} not acknowledged: internal error "
        f"({type(exc).__name__}); see the manager log"
    )
