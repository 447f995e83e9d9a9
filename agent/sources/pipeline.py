"""One object's way from a source into the spool: read, parse, discard, spool + checkpoint.

Every source (S3, directory) turns what it finds into ``WorkItem``s; ``prepare`` (read, parse,
discard) and ``commit`` (spool + checkpoint, then bookkeeping) do the rest, the same way for
all of them; the collector runs them on different threads so downloads never wait for the
disk. The object's checkpoint update rides in the spool transaction that stores its records.
A full spool makes the committer wait for acks (backpressure); a spool disk error makes it wait
and retry; neither ever drops the object. Only ``stop`` abandons it, un-checkpointed, so it is
read again next time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from trailwarden.agent.checkpoint import DONE, ERROR, FAILED, CheckpointUpdate
from trailwarden.agent.sources.records import split
from trailwarden.agent.spool import Spool
from trailwarden.agent.status import SourceTracker
from trailwarden.common.errors import (
    AwsAccessError,
    ObjectError,
    ObjectTooLargeError,
    SourceError,
    SpoolError,
    SpoolFullError,
)
from trailwarden.common.model import SourceMeta
from trailwarden.common.schema.filters import DiscardRule

log = logging.getLogger(__name__)

SPOOL_RETRY_MAX_S = 30.0
"""Longest wait between retries of a spool write that failed on disk errors."""


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class WorkItem:
    """One object (or file) to collect."""

    meta: SourceMeta
    size: int
    read: Callable[[], bytes]
    """Fetch the bytes; raises ObjectError / AwsAccessError."""
    finish: Callable[[str, str, bool], CheckpointUpdate]
    """The checkpoint update for an outcome (DONE / FAILED / ERROR, reason, retryable)."""
    completed: Callable[[], None] = field(default=_nothing)
    """Called once the outcome is committed (not when abandoned): the source's bookkeeping."""
    after_spooled: Callable[[], None] | None = None
    """Runs after the records are durably spooled (``remove_from_bucket``)."""
    spooled: Callable[[list[int]], None] | None = None
    """Told the spool sequences of the object's batches (none for a failed or empty object)
    once its outcome is committed: a source that acts on the manager's acks (SQS deletes)
    watches those."""
    stream: str = ""
    """The part of the source it belongs to (an S3 account/region prefix), for its lag."""
    time_ms: int = 0
    """The object's time (from a CloudTrail file name), 0 when not known: moves the lag."""


class SourceRun(Protocol):
    """What the collector needs from a source for one pass."""

    name: str
    skip_on_error: bool
    discard: tuple[DiscardRule, ...]
    workers: int
    tracker: SourceTracker

    def plan(self, stop: threading.Event) -> Iterator[WorkItem]:
        """Items to collect, lazily (listing as it goes); SourceError when listing fails."""
        ...

    def end_pass(self) -> None:
        """Persist what the pass learned (watermarks); called after every item is done."""
        ...


@dataclass
class Prepared:
    """An item read and parsed, ready to be spooled with its checkpoint update."""

    item: WorkItem
    records: list[bytes]
    update: CheckpointUpdate
    ok: bool
    """False when the object could not be used (the update records why)."""
    discarded: int = 0
    read_bytes: int = 0
    held: int = 0
    """Bytes of the collector's memory budget this item holds until it is committed."""


def prepare(item: WorkItem, run: SourceRun) -> Prepared:
    """Read, parse and filter one item (no spool yet); failures become a Prepared too."""
    data = read(item, run)
    return data if isinstance(data, Prepared) else parse(item, run, data)


def read(item: WorkItem, run: SourceRun) -> bytes | Prepared:
    """The item's bytes, or its failed outcome."""
    try:
        return item.read()
    except (ObjectError, AwsAccessError) as exc:
        return _failed(item, run, exc)


def parse(item: WorkItem, run: SourceRun, data: bytes) -> Prepared:
    """Split read bytes into the records to spool (see records.split); failures become a
    Prepared too."""
    where = item.meta.location
    try:
        try:
            out = split(data, where, run.discard)
        except (ObjectError, AwsAccessError):
            raise
        except Exception as exc:  # one object must not wedge the source
            # An unforeseen failure on one object (a parser bug, MemoryError on a huge file)
            # would otherwise stop every pass at this same object. Treat it as unusable
            # content: reported with bucket/key, skipped under skip_on_error, else retried.
            log.exception("fetch: source %s: %s: unexpected error while parsing", run.name, where)
            raise ObjectError(
                f"internal error while parsing: {type(exc).__name__}: {exc}", where=where
            ) from exc
    except (ObjectError, AwsAccessError) as exc:
        return _failed(item, run, exc)
    for problem in out.problems:
        run.tracker.record_refused(where, problem)
        log.warning("fetch: source %s: %s: record skipped: %s", run.name, where, problem)
    update = item.finish(DONE, "", True)
    return Prepared(
        item, out.records, update, ok=True, discarded=out.discarded, read_bytes=len(data)
    )


def _failed(item: WorkItem, run: SourceRun, exc: ObjectError | AwsAccessError) -> Prepared:
    # Unusable content is skipped for good when allowed; refused access or a network failure
    # is retried on the next pass (ERROR), never silently dropped.
    skip = run.skip_on_error and isinstance(exc, ObjectError)
    state = FAILED if skip else ERROR
    log.warning("fetch: source %s: %s (%s)", run.name, exc, "skipped" if skip else "will retry")
    run.tracker.object_failed(item.meta.location, exc.reason)
    if isinstance(exc, ObjectTooLargeError):
        run.tracker.object_too_large()
    retryable = bool(getattr(exc, "retryable", True))
    return Prepared(item, [], item.finish(state, exc.reason, retryable), ok=False)


def commit(prepared: Prepared, run: SourceRun, spool: Spool, stop: threading.Event) -> bool:
    """Spool a prepared item with its checkpoint, then the source's bookkeeping.

    False when the pass must stop: an unusable object without ``skip_on_error``, or ``stop``
    (the object is then abandoned un-checkpointed, and not completed, so the source's watermark
    cannot pass it).
    """
    item = prepared.item
    sequences = _commit(item, prepared.records, prepared.update, run, spool, stop)
    if sequences is None:
        return False
    item.completed()
    if item.spooled is not None:
        item.spooled(sequences)
    if not prepared.ok:
        return run.skip_on_error
    run.tracker.object_done(
        len(prepared.records),
        prepared.discarded,
        prepared.read_bytes,
        stream=item.stream,
        time_ms=item.time_ms,
    )
    if item.after_spooled is not None:
        try:
            item.after_spooled()
        except SourceError as exc:
            run.tracker.problem(item.meta.location, exc.reason)
            log.warning("fetch: source %s: %s", run.name, exc)
    return True


def deliver(item: WorkItem, run: SourceRun, spool: Spool, stop: threading.Event) -> bool:
    """``prepare`` then ``commit`` in the calling thread."""
    return commit(prepare(item, run), run, spool, stop)


def _commit(
    item: WorkItem,
    records: list[bytes],
    update: CheckpointUpdate,
    run: SourceRun,
    spool: Spool,
    stop: threading.Event,
) -> list[int] | None:
    """Spool ``records`` with ``update``, waiting out a full spool or disk errors; the batches'
    sequences, or None when ``stop`` came first."""
    delay = 0.5
    reported = False
    while not stop.is_set():
        try:
            sequences = spool.put(item.meta, records, update)
        except SpoolFullError:
            run.tracker.set_paused(True)
            spool.wait_for_space(stop, timeout=1.0)
            continue
        except SpoolError as exc:
            if not reported:
                log.error(
                    "spool: source %s: cannot store %s: %s; retrying",
                    run.name,
                    item.meta.location,
                    exc,
                )
                run.tracker.error(str(exc))
                reported = True
            stop.wait(delay)
            delay = min(delay * 2, SPOOL_RETRY_MAX_S)
            continue
        run.tracker.set_paused(False)
        return sequences
    return None
