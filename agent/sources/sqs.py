"""The SQS notification source: S3 object notifications in, the objects' records to the spool.

A pass receives 10 messages at a time (long polling, ``wait_time``) and ends on a poll that
finds nothing, so ``agent run --once`` drains the queue and the scheduler starts the next pass
at once otherwise (an empty queue costs one call per long poll, never a busy loop). Each
message names objects (agent/sources/notifications.py); each object goes through the S3
source's path (pipeline.py: same parser, discard rules and spool).

**Delete after commit.** A message is deleted only when every record of its objects has been
acknowledged by the manager: the spool tells us each ack (``Spool.add_ack_listener``), and the
keeper thread deletes the messages whose batches are all gone, 10 per call. Until then the
keeper extends the message's visibility each time a third of ``visibility_timeout`` has passed
(always before half of it), so a slow manager never lets another agent take it. Several agents
may read one queue: SQS hides a message from the others while one holds it, and the manager's
dedupe covers the rare double delivery (an extension that came too late, a crash).

Nothing of this is written to disk: after a crash, held messages simply return when their
visibility ends and are collected again, their records dropped by the manager as duplicates.

**Failures.** A message whose object cannot be used (missing, AccessDenied, corrupt) or whose
body is malformed is left to return; the problem names bucket/key (or the message), the
receive count and the reason. Once a message has been received ``max_receive_count`` times it
is poison: reported and left alone for the queue's dead-letter queue (redrive policy).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from sqlite3 import Connection

from trailwarden.agent.checkpoint import DONE
from trailwarden.agent.sources.notifications import LogObject, read_notification
from trailwarden.agent.sources.pipeline import WorkItem
from trailwarden.agent.sources.sqs_queue import Message, SqsClients, open_queue
from trailwarden.agent.spool import Spool
from trailwarden.agent.status import SourceTracker, SqsCounters
from trailwarden.common.errors import ObjectError, SourceError
from trailwarden.common.model import SourceMeta
from trailwarden.common.schema.sources import SqsSourceConfig

log = logging.getLogger(__name__)

KEEPER_TICK_S = 0.2
"""How often the keeper looks for messages to delete or extend."""
EXTEND_FRACTION = 1 / 3
"""A held message is extended once this share of its visibility timeout has passed."""
MAX_HELD_MESSAGES = 2000
"""Messages held at once (in flight or waiting for acks); receiving waits beyond."""
RETRY_MAX_S = 60.0
"""Longest wait before a pass after failed ones."""
LOG_EVERY_S = 60.0
"""A counters line in the log at most this often while messages flow."""


class _NoCheckpoint:
    """SQS sources keep no checkpoint: the queue remembers what is left to do."""

    def apply(self, conn: Connection) -> None:
        return None


NO_CHECKPOINT = _NoCheckpoint()


@dataclass(eq=False)
class _Held:
    """A received message until it is deleted or given up."""

    message: Message
    objects: int
    extended_at: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: bool = False


@dataclass(eq=False)
class _Object:
    held: _Held
    location: str
    pending: set[int] = field(default_factory=set)
    failure: str = ""


class SqsRun:
    """One SQS source (see pipeline.SourceRun); lives across passes with its held messages."""

    skip_on_error = True
    """A failed object never stops the pass: its message returns to the queue."""

    def __init__(
        self,
        config: SqsSourceConfig,
        spool: Spool,
        tracker: SourceTracker,
        *,
        clients_factory: Callable[[SqsSourceConfig], SqsClients] = open_queue,
    ) -> None:
        self.config = config
        self.name = config.name
        self.discard = config.discard
        self.workers = config.workers
        self.tracker = tracker
        self.counters = SqsCounters()
        tracker.sqs = self.counters
        self._spool = spool
        self._clients_factory = clients_factory
        self._clients: SqsClients | None = None
        self._lock = threading.Condition()
        self._held: dict[str, _Held] = {}
        """message ID -> held message."""
        self._by_sequence: dict[int, _Object] = {}
        self._deletable: list[_Held] = []
        self._deleting = 0
        """Messages in the delete call under way (still outstanding until it returns)."""
        self._keeper: threading.Thread | None = None
        self._wake = threading.Event()
        self._logged_at = 0.0
        self._failures = 0
        """Passes in a row that failed before a receive succeeded."""
        spool.add_ack_listener(self._acked)

    # ---- SourceRun -----------------------------------------------------------------------

    def plan(self, stop: threading.Event) -> Iterator[WorkItem]:
        # Passes follow each other at once; after a failed one (queue refused or unreachable)
        # the next waits, doubling up to RETRY_MAX_S, so a broken queue is not hammered.
        if self._failures and stop.wait(min(RETRY_MAX_S, 2.0 ** (self._failures - 1))):
            return
        self._failures += 1
        if self._clients is None:
            self._clients = self._clients_factory(self.config)
        clients = self._clients
        self._start_keeper()
        config = self.config
        while not stop.is_set():
            if not self._wait_for_room(stop):
                return
            messages = clients.queue.receive(config.wait_time, config.visibility_timeout)
            self._failures = 0
            if not messages:
                self.counters.set(lag_ms=0)
                return
            now_ms = int(time.time() * 1000)
            oldest = min((m.sent_ms for m in messages if m.sent_ms), default=now_ms)
            self.counters.add(messages_received=len(messages))
            self.counters.set(lag_ms=max(0, now_ms - oldest))
            for index, message in enumerate(messages):
                if stop.is_set():
                    self._release(clients, messages[index:])
                    return
                yield from self._take(clients, message)
            self._maybe_log()

    def end_pass(self) -> None:
        self._maybe_log()

    def settle(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the deletes already due (acks received) to be made."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._lock:
            while (self._deletable or self._deleting) and time.monotonic() < deadline:
                self._lock.wait(min(KEEPER_TICK_S, max(0.0, deadline - time.monotonic())))

    def outstanding(self) -> int:
        """Messages held (objects in flight or waiting for acks, or not yet deleted)."""
        with self._lock:
            return len(self._held) + len(self._deletable) + self._deleting

    # ---- one message ---------------------------------------------------------------------

    def _take(self, clients: SqsClients, message: Message) -> Iterator[WorkItem]:
        config = self.config
        where = f"{clients.queue.url} message {message.message_id}"
        if message.receive_count > config.max_receive_count:
            self._poison(where, message, "received again after max_receive_count")
            return
        try:
            notification = read_notification(message.body, message.message_id)
        except ObjectError as exc:
            self._returned(where, message, f"malformed notification: {exc.reason}")
            return
        if notification.ignored:
            self.tracker.skipped(len(notification.ignored))
            for reason in notification.ignored:
                log.debug("fetch: source %s: %s: ignored %s", self.name, where, reason)
        held = _Held(message, len(notification.objects))
        with self._lock:
            if not notification.objects:
                self.counters.add(messages_ignored=1)
                self._deletable.append(held)
                self._wake.set()
                return
            self._held[message.message_id] = held
            self.counters.set(messages_held=len(self._held))
        for log_object in notification.objects:
            yield self._item(clients, held, log_object)

    def _item(self, clients: SqsClients, held: _Held, log_object: LogObject) -> WorkItem:
        bucket = clients.bucket(log_object.bucket)
        tracked = _Object(held, f"{log_object.bucket}/{log_object.key}")

        def finish(state: str, reason: str, retryable: bool) -> _NoCheckpoint:
            if state != DONE:
                tracked.failure = reason
            return NO_CHECKPOINT

        return WorkItem(
            meta=SourceMeta(
                source=self.name,
                bucket=log_object.bucket,
                key=log_object.key,
                account_id=log_object.account_id,
                region=log_object.region,
                account_alias=self.config.aws_account_alias,
            ),
            size=log_object.size,
            read=lambda: bucket.get(log_object.key),
            finish=finish,
            spooled=lambda sequences: self._spooled(tracked, sequences),
        )

    def _spooled(self, tracked: _Object, sequences: list[int]) -> None:
        """The object's outcome is in the spool: watch its batches' acks, or give up."""
        held = tracked.held
        if tracked.failure:
            with self._lock:
                already = held.failed
                held.failed = True
                if self._held.get(held.message.message_id) is held:
                    del self._held[held.message.message_id]
                self.counters.set(messages_held=len(self._held))
            if not already:
                self._returned(
                    f"s3://{tracked.location}", held.message, tracked.failure, counted_failed=True
                )
            return
        with self._lock:
            tracked.pending = set(sequences)
            for sequence in sequences:
                self._by_sequence[sequence] = tracked
        acked_before = set(sequences) - self._spool.unacked(sequences) if sequences else set()
        self._acked(sorted(acked_before))
        if not sequences:
            with self._lock:
                self._object_done(tracked)

    def _acked(self, sequences: Sequence[int]) -> None:
        """Spool ack listener (the link's thread): objects whose batches are all acked."""
        with self._lock:
            for sequence in sequences:
                tracked = self._by_sequence.pop(sequence, None)
                if tracked is None:
                    continue
                tracked.pending.discard(sequence)
                if not tracked.pending:
                    self._object_done(tracked)

    def _object_done(self, tracked: _Object) -> None:
        """With the lock held."""
        held = tracked.held
        held.done += 1
        finished = held.done == held.objects and not held.failed
        # Identity, not ID: the same message received again (its visibility ran out) is held
        # anew under the same ID with a new receipt handle.
        if finished and self._held.get(held.message.message_id) is held:
            del self._held[held.message.message_id]
            self._deletable.append(held)
            self.counters.set(messages_held=len(self._held))
            self._wake.set()

    def _returned(
        self, where: str, message: Message, reason: str, *, counted_failed: bool = False
    ) -> None:
        """Leave ``message`` to return to the queue (or, past max_receive_count, to the DLQ)."""
        if message.receive_count >= self.config.max_receive_count:
            self._poison(where, message, reason)
            return
        self.counters.add(messages_returned=1)
        text = (
            f"{reason} (receive {message.receive_count} of {self.config.max_receive_count}; "
            "the message returns to the queue)"
        )
        if not counted_failed:
            self.tracker.object_failed(where, text)
        else:
            self.tracker.problem(where, text)
        log.warning("fetch: source %s: %s: %s", self.name, where, text)

    def _poison(self, where: str, message: Message, reason: str) -> None:
        self.counters.add(messages_poison=1)
        text = (
            f"poison message: {reason} (received {message.receive_count} times, "
            f"max_receive_count {self.config.max_receive_count}); left to the queue's "
            "dead-letter queue"
        )
        self.tracker.object_failed(where, text)
        log.error("fetch: source %s: %s: %s", self.name, where, text)

    def _release(self, clients: SqsClients, messages: Sequence[Message]) -> None:
        """Taken but not started (stopping): let other readers have them now."""
        try:
            clients.queue.release(messages)
        except SourceError as exc:
            log.warning("fetch: source %s: releasing messages: %s", self.name, exc)

    def _wait_for_room(self, stop: threading.Event) -> bool:
        with self._lock:
            while len(self._held) >= MAX_HELD_MESSAGES:
                if stop.is_set():
                    return False
                self._lock.wait(KEEPER_TICK_S)
        return not stop.is_set()

    # ---- the keeper: deletes and visibility extensions -----------------------------------

    def _start_keeper(self) -> None:
        with self._lock:
            if self._keeper is not None and self._keeper.is_alive():
                return
            self._keeper = threading.Thread(
                target=self._keep, name=f"sqs-keeper-{self.name}", daemon=True
            )
            self._keeper.start()

    def _keep(self) -> None:
        while True:
            self._wake.wait(KEEPER_TICK_S)
            self._wake.clear()
            clients = self._clients
            if clients is None:
                continue
            try:
                self._delete_ready(clients)
                self._extend_due(clients)
            except SourceError as exc:
                self.tracker.problem(exc.where, exc.reason)
                log.warning("fetch: source %s: %s", self.name, exc)
                time.sleep(1.0)  # a refused or unreachable queue: do not hammer it
            except Exception:  # a bug must not stop deletions for good
                log.exception("fetch: source %s: keeper failed", self.name)
                time.sleep(1.0)

    def _delete_ready(self, clients: SqsClients) -> None:
        with self._lock:
            ready, self._deletable = self._deletable, []
            self._deleting = len(ready)
        if not ready:
            return
        try:
            failures = clients.queue.delete([h.message for h in ready])
        except SourceError:
            with self._lock:
                self._deletable[:0] = ready  # tried again on the next tick
                self._deleting = 0
            raise
        for failure in failures:
            # Usually a receipt handle gone stale (the visibility ran out and another reader
            # took the message): it comes back and is deduped by the manager.
            self.tracker.problem(
                f"{clients.queue.url} message {failure.message_id}",
                f"delete refused: {failure.code}: {failure.message}",
            )
        self.counters.add(messages_deleted=len(ready) - len(failures))
        with self._lock:
            self._deleting = 0
            self._lock.notify_all()

    def _extend_due(self, clients: SqsClients) -> None:
        timeout = self.config.visibility_timeout
        now = time.monotonic()
        with self._lock:
            due = [
                h
                for h in self._held.values()
                if not h.failed and now - h.extended_at >= timeout * EXTEND_FRACTION
            ]
        if not due:
            return
        failures = clients.queue.extend([h.message for h in due], timeout)
        for held in due:
            held.extended_at = now
        for failure in failures:
            self.tracker.problem(
                f"{clients.queue.url} message {failure.message_id}",
                f"visibility extension refused: {failure.code}: {failure.message}",
            )
        self.counters.add(visibility_extensions=len(due) - len(failures))

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_S:
            return
        self._logged_at = now
        c = self.counters.snapshot()
        log.info(
            "fetch: source %s: messages received %d, deleted %d, returned %d, poison %d, "
            "ignored %d, held %d; visibility extensions %d; lag %.1fs",
            self.name,
            c.messages_received,
            c.messages_deleted,
            c.messages_returned,
            c.messages_poison,
            c.messages_ignored,
            c.messages_held,
            c.visibility_extensions,
            c.lag_ms / 1000,
        )
