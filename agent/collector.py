"""The collector: runs every configured source on its interval, objects in parallel, into the spool.

Each source gets a pass at a time (never two at once: they share its checkpoints); within a pass
``workers`` downloaders read and parse objects while committer threads spool them, and nothing
is listed ahead of what is in flight, so memory is bounded by the objects in flight: by count,
by stored bytes while downloading, and by inflated bytes from parsing until spooled (see
``_execute``). ``run_once`` makes one pass over
every source and returns when they are done (for ``agent run --once``); ``start`` runs them in the
background on their intervals. ``reconfigure`` swaps sources live: a removed or changed source
stops taking new objects, lets its in-flight ones finish, and (when changed) its successor
starts after it, on the same checkpoints (they are keyed by bucket and folder, not by name).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trailwarden.agent.sources.directory import DirectoryRun
from trailwarden.agent.sources.pipeline import Prepared, SourceRun, WorkItem, commit, parse, read
from trailwarden.agent.sources.records import inflated_size
from trailwarden.agent.sources.s3 import CloudTrailRun
from trailwarden.agent.sources.sqs import SqsRun
from trailwarden.agent.spool import Spool
from trailwarden.agent.status import (
    FAILED,
    IDLE,
    RUNNING,
    STOPPED,
    SourceStatus,
    SourceTracker,
)
from trailwarden.common.errors import SourceError, TrailWardenError
from trailwarden.common.schema.sources import (
    CloudTrailSourceConfig,
    SourceConfig,
    SqsSourceConfig,
)

log = logging.getLogger(__name__)

TICK_S = 0.2
"""How often the scheduler and waiting loops look at stop flags and due sources."""
MAX_IN_FLIGHT_BYTES = 16 << 20
"""Stored (usually gzipped) bytes of the objects being downloaded by one source; one larger
object still runs, alone."""
MAX_PARSED_BYTES = 4 << 20
"""Memory for the objects of one source between download and spool, counted in inflated bytes
(an object of D bytes takes ~3 D while it is split, 2 D while it waits for and goes into the
spool: its records and the spool's batch blobs). One larger object still runs, alone. CloudTrail
objects inflate ~10 x, so a budget on stored bytes alone let 20 objects in flight hold ~100 MiB;
parsing is CPU under one GIL, so more in flight would not go faster."""
PARSE_FACTOR = 3
"""Memory while an object is split, per inflated byte: the inflated bytes, their text, and
the records sliced out of it."""
HOLD_FACTOR = 2
"""Memory from parsed to spooled, per byte of records: the records and the spool's batches."""


@dataclass(frozen=True)
class PassResult:
    """What one ``run_once`` did, summed over the sources."""

    objects_done: int = 0
    objects_failed: int = 0
    records_spooled: int = 0
    bytes_read: int = 0
    failed_sources: tuple[str, ...] = ()
    """Sources whose pass stopped on an error (see their status for why)."""
    errors: tuple[str, ...] = ()
    """One message per failed source."""

    @property
    def ok(self) -> bool:
        return not self.failed_sources


@dataclass
class _Slot:
    """A configured source with its scheduling state."""

    config: SourceConfig
    run: SourceRun
    tracker: SourceTracker
    next_run: float
    retire: threading.Event = field(default_factory=threading.Event)
    """Set when the source is removed or replaced: take no new objects."""
    pass_lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    predecessor: _Slot | None = None


class Collector:
    """Schedules the sources' passes (see the module docstring)."""

    def __init__(self, sources: Sequence[SourceConfig], spool: Spool, *, state_dir: Path) -> None:
        self.spool = spool
        self.state_dir = Path(state_dir)
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._slots: dict[str, _Slot] = {}
        for config in sources:
            self._slots[config.name] = self._new_slot(config, None)

    # ---- public API ----------------------------------------------------------------------

    def start(self) -> None:
        """Run every source in the background on its interval (first at once if run_on_start)."""
        with self._lock:
            if self._scheduler is not None:
                return
            self._scheduler = threading.Thread(
                target=self._schedule, name="collector-scheduler", daemon=True
            )
            self._scheduler.start()

    def run_once(self, stop: threading.Event | None = None) -> PassResult:
        """One full pass over every source, concurrently; blocks until all are done."""
        stop = stop or threading.Event()
        with self._lock:
            slots = list(self._slots.values())
        before = {slot.config.name: slot.tracker.snapshot() for slot in slots}
        outcome: dict[str, str] = {}
        threads = [
            threading.Thread(
                target=lambda s=slot: outcome.__setitem__(s.config.name, self._run_pass(s, stop)),
                name=f"pass-{slot.config.name}",
                daemon=True,
            )
            for slot in slots
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = failed = records = read = 0
        for slot in slots:
            now, then = slot.tracker.snapshot(), before[slot.config.name]
            done += now.objects_done - then.objects_done
            failed += now.objects_failed - then.objects_failed
            records += now.records_spooled - then.records_spooled
            read += now.bytes_read - then.bytes_read
        errors = {name: message for name, message in outcome.items() if message}
        return PassResult(
            objects_done=done,
            objects_failed=failed,
            records_spooled=records,
            bytes_read=read,
            failed_sources=tuple(sorted(errors)),
            errors=tuple(f"{name}: {errors[name]}" for name in sorted(errors)),
        )

    def reconfigure(self, sources: Sequence[SourceConfig]) -> None:
        """Apply a new source list live; in-flight objects finish, checkpoints are kept."""
        wanted = {config.name: config for config in sources}
        with self._lock:
            for name, slot in list(self._slots.items()):
                if name not in wanted:
                    slot.retire.set()
                    slot.tracker.set_state(STOPPED)
                    del self._slots[name]
                    log.info("collect: source %s removed", name)
                elif wanted[name] != slot.config:
                    slot.retire.set()
                    self._slots[name] = self._new_slot(wanted[name], slot)
                    log.info("collect: source %s changed; restarting it", name)
            for name, config in wanted.items():
                if name not in self._slots:
                    self._slots[name] = self._new_slot(config, None)
                    log.info("collect: source %s added", name)

    def trigger(self, name: str | None = None) -> None:
        """Run a source (or all) as soon as possible instead of waiting for its interval."""
        with self._lock:
            for slot in self._slots.values():
                if name is None or slot.config.name == name:
                    slot.next_run = time.monotonic()

    def status(self) -> list[SourceStatus]:
        with self._lock:
            slots = list(self._slots.values())
        return [slot.tracker.snapshot() for slot in slots]

    def outstanding(self) -> int:
        """Work taken that is not settled yet: SQS messages not yet deleted after their acks
        (other sources settle when their records are spooled)."""
        with self._lock:
            runs = [slot.run for slot in self._slots.values()]
        return sum(run.outstanding() for run in runs if isinstance(run, SqsRun))

    def settle(self, timeout: float) -> None:
        """Give sources that act on acks (SQS deletes) up to ``timeout`` to finish what the
        last acks made due; called on shutdown after the spool has drained."""
        deadline = time.monotonic() + timeout
        with self._lock:
            runs = [slot.run for slot in self._slots.values()]
        for run in runs:
            if isinstance(run, SqsRun):
                run.settle(max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling; objects waiting on the spool are abandoned (fetched again later)."""
        self._shutdown.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = [s.thread for s in self._slots.values() if s.thread is not None]
            scheduler = self._scheduler
        for thread in [scheduler, *threads]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    # ---- internals -----------------------------------------------------------------------

    def _new_slot(self, config: SourceConfig, predecessor: _Slot | None) -> _Slot:
        tracker = predecessor.tracker if predecessor else SourceTracker(config.name, config.type)
        run: SourceRun
        if isinstance(config, CloudTrailSourceConfig):
            run = CloudTrailRun(config, self.spool, tracker)
        elif isinstance(config, SqsSourceConfig):
            run = SqsRun(config, self.spool, tracker)
        else:
            run = DirectoryRun(config, self.spool, tracker)
        first = time.monotonic() + (0.0 if config.run_on_start else config.interval)
        return _Slot(
            config=config, run=run, tracker=tracker, next_run=first, predecessor=predecessor
        )

    def _schedule(self) -> None:
        while not self._shutdown.is_set():
            now = time.monotonic()
            with self._lock:
                for slot in self._slots.values():
                    busy = slot.thread is not None and slot.thread.is_alive()
                    if not busy and now >= slot.next_run:
                        slot.next_run = now + slot.config.interval
                        slot.thread = threading.Thread(
                            target=self._run_pass,
                            args=(slot, self._shutdown),
                            name=f"pass-{slot.config.name}",
                            daemon=True,
                        )
                        slot.thread.start()
            self._shutdown.wait(TICK_S)

    def _run_pass(self, slot: _Slot, stop: threading.Event) -> str:
        """One pass of one source; returns '' or the error that stopped it."""
        if slot.predecessor is not None:
            with slot.predecessor.pass_lock:  # the replaced source's last objects finish first
                slot.predecessor = None
        with slot.pass_lock:
            if slot.retire.is_set():
                return ""
            name = slot.config.name
            tracker = slot.tracker
            tracker.set_state(RUNNING)
            started = time.monotonic()
            try:
                error = self._execute(slot, stop)
            except TrailWardenError as exc:
                error = str(exc)
            except Exception as exc:  # a bug must not kill the scheduler; report it
                log.exception("collect: source %s: unexpected error", name)
                error = f"internal error: {type(exc).__name__}: {exc}"
            if error:
                tracker.error(error)
                log.error("collect: source %s: pass stopped: %s", name, error)
                tracker.pass_finished(FAILED)
            else:
                tracker.pass_finished(STOPPED if slot.retire.is_set() else IDLE)
                snap = tracker.snapshot()
                log.info(
                    "collect: source %s: pass done in %.1fs (total %d objects, %d records, "
                    "%d failed, %d skipped)",
                    name,
                    time.monotonic() - started,
                    snap.objects_done,
                    snap.records_spooled,
                    snap.objects_failed,
                    snap.objects_skipped,
                )
            return error

    def _execute(self, slot: _Slot, stop: threading.Event) -> str:
        """Run one pass: ``workers`` downloaders pull items from the lazy listing, read and
        parse them, and hand them to committer threads that spool them (group-committed).

        A downloader never waits for the disk unless the hand-off queue is full, so downloads
        stay at ``workers`` in flight. Memory is bounded twice: stored bytes while downloading
        (``MAX_IN_FLIGHT_BYTES``), then inflated bytes from parsing until spooled
        (``MAX_PARSED_BYTES``). A downloader holds its download budget until its object is
        parsed; holders of the parse budget never wait for the download budget, so neither
        can deadlock the other. Returns '' or the error that stopped the pass.
        """
        run = slot.run
        halt = threading.Event()  # take no more items: failure, stop or retirement
        abandon = threading.Event()  # give up waiting on the spool: shutdown only
        failure: list[str] = []
        downloads = _ByteBudget(MAX_IN_FLIGHT_BYTES)
        parsed = _ByteBudget(MAX_PARSED_BYTES)
        items = run.plan(halt)
        take = threading.Lock()
        handoff: queue.Queue[Prepared | None] = queue.Queue(maxsize=run.workers)
        committers_count = max(2, run.workers // 2)

        def propagate() -> None:
            if stop.is_set() or self._shutdown.is_set():
                abandon.set()
                halt.set()
            if slot.retire.is_set():
                halt.set()

        def fail(message: str) -> None:
            failure.append(message)
            halt.set()

        def next_item() -> WorkItem | None:
            with take:
                if halt.is_set():
                    return None
                try:
                    return next(items, None)
                except SourceError as exc:  # listing failed: the pass stops
                    fail(str(exc))
                except Exception as exc:  # a bug must not end the pass as if it were complete
                    log.exception("collect: source %s: listing failed", run.name)
                    fail(f"listing: internal error: {type(exc).__name__}: {exc}")
                return None

        def fetch(item: WorkItem) -> Prepared | None:
            """Read and parse ``item`` within the budgets; None when the pass halts."""
            if not downloads.acquire(item.size, halt):
                return None
            try:
                data = read(item, run)
                if isinstance(data, Prepared):
                    return data
                need = PARSE_FACTOR * inflated_size(data)
                if not parsed.acquire(need, halt):
                    return None
                prepared = parse(item, run, data)
                del data
                prepared.held = min(need, HOLD_FACTOR * sum(map(len, prepared.records)))
                parsed.release(need - prepared.held)
                return prepared
            finally:
                downloads.release(item.size)

        def downloader() -> None:
            while (item := next_item()) is not None:
                try:
                    prepared = fetch(item)
                except Exception as exc:  # a bug in one object must not hang the pass
                    log.exception("collect: source %s: %s", run.name, item.meta.location)
                    fail(f"{item.meta.location}: internal error: {exc}")
                    return
                if prepared is None:
                    return
                while True:
                    try:
                        handoff.put(prepared, timeout=TICK_S)
                        break
                    except queue.Full:
                        if abandon.is_set():
                            parsed.release(prepared.held)
                            return
                # Not kept while the next object downloads and waits for the budget: the
                # budget no longer counts it once a committer has released it.
                del prepared

        def committer() -> None:
            while (prepared := handoff.get()) is not None:
                try:
                    if not commit(prepared, run, self.spool, abandon) and not abandon.is_set():
                        problems = run.tracker.snapshot().problems
                        fail(f"{problems[0].where}: {problems[0].reason}" if problems else "failed")
                    elif abandon.is_set():
                        halt.set()
                except Exception as exc:
                    log.exception("collect: source %s: %s", run.name, prepared.item.meta.location)
                    fail(f"{prepared.item.meta.location}: internal error: {exc}")
                finally:
                    parsed.release(prepared.held)
                    prepared.records = []  # freed now, not when the next item arrives

        def start(target: Callable[[], None], role: str, count: int) -> list[threading.Thread]:
            threads = [
                threading.Thread(target=target, name=f"{role}-{run.name}-{n}", daemon=True)
                for n in range(count)
            ]
            for thread in threads:
                thread.start()
            return threads

        def join(threads: list[threading.Thread]) -> None:
            for thread in threads:
                while thread.is_alive():
                    thread.join(TICK_S)
                    propagate()

        committers = start(committer, "spool", committers_count)
        join(start(downloader, "fetch", run.workers))
        for _ in committers:
            while True:  # committers drain the queue before they see their end marker
                try:
                    handoff.put(None, timeout=TICK_S)
                    break
                except queue.Full:
                    propagate()
        join(committers)
        with take:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # ends the listing generator now, not at garbage collection
        # Safe after failures and stops too: the watermark only covers completed objects.
        run.end_pass()
        return failure[0] if failure else ""


class _ByteBudget:
    """Bytes in flight under a limit; one request larger than the limit runs alone."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def acquire(self, size: int, halt: threading.Event) -> bool:
        with self._cond:
            while self._used and self._used + size > self._limit:
                if halt.is_set():
                    return False
                self._cond.wait(TICK_S)
            self._used += size
            return True

    def release(self, size: int) -> None:
        with self._cond:
            self._used -= size
            self._cond.notify_all()
