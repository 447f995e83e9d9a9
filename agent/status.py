"""Per-source state and counters, reported to the manager and shown by ``admin agents``.

``SourceStatus`` mirrors the wire's ``trailwarden.v1.SourceStatus`` field for field (the link
converts it at the edge). ``SourceTracker`` is the thread-safe live counterpart the collector's
workers update.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

MAX_PROBLEMS = 20
"""Recent problems kept per source (most recent first)."""

IDLE = "idle"
RUNNING = "running"
PAUSED = "paused"
FAILED = "failed"
STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that could not be collected: where (bucket/key or path) and why."""

    where: str
    reason: str
    time_unix_ms: int


@dataclass(frozen=True, slots=True)
class SqsStatus:
    """The counters of an SQS notification source (mirrors proto SqsStatus)."""

    messages_received: int = 0
    messages_deleted: int = 0
    """Deleted after every record of their objects was acknowledged (or had nothing to do)."""
    messages_returned: int = 0
    """Left to return to the queue: an object failed, or the body was malformed."""
    messages_poison: int = 0
    """Still failing after ``max_receive_count`` receives: left to the dead-letter queue."""
    messages_ignored: int = 0
    """Test events and notifications naming no CloudTrail log file, deleted."""
    messages_held: int = 0
    """Received, objects in flight or waiting for the manager's acks, right now."""
    visibility_extensions: int = 0
    lag_ms: int = 0
    """Age of the oldest message of the last receive (0 after an empty poll)."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A snapshot of one source (mirrors proto SourceStatus)."""

    name: str
    type: str
    state: str
    """idle | running | paused | failed | stopped."""
    objects_done: int = 0
    objects_failed: int = 0
    objects_skipped: int = 0
    """Non-log objects passed over by design (digests, other files)."""
    records_spooled: int = 0
    bytes_read: int = 0
    last_error: str = ""
    last_pass_unix_ms: int = 0
    problems: tuple[Problem, ...] = ()
    """Most recent first, at most MAX_PROBLEMS."""
    records_discarded: int = 0
    """Dropped by discard rules (not on the wire; shown locally)."""
    records_refused: int = 0
    """Single records skipped as unusable (broken JSON, not UTF-8, too deep, too big), each
    reported with bucket/key and index; the rest of their object was delivered."""
    objects_late: int = 0
    """Objects found older than the source's ``late_window`` by a reconcile: collected, and
    each logged with bucket/key and how late it was."""
    objects_refused_size: int = 0
    """Objects refused because they inflate past the size guard (gzip bombs); also counted
    in ``objects_failed``."""
    last_pass_seconds: float = 0.0
    """How long the last finished pass took (metrics; not on the wire)."""
    last_success_unix_ms: int = 0
    """When a pass last finished without failing (metrics; not on the wire)."""
    sqs: SqsStatus | None = None
    """SQS sources only."""
    lag_ms: int = 0
    """How far collection is behind the newest object: per stream, the newest object's time
    seen in the listings minus the newest collected object's time, the largest of the streams
    (SQS: the age of the oldest message of the last receive). 0 = caught up or not known."""
    pass_objects_done: int = 0
    """Objects collected in the pass running now (or the last one); not on the wire."""
    pass_objects_known: int = 0
    """Objects the running pass has listed to collect so far (the total grows as it lists)."""
    pass_records: int = 0
    """Records spooled in the pass running now (or the last one)."""


@dataclass
class _StreamLag:
    """Newest object time listed and collected in one stream (Unix ms)."""

    seen_ms: int = 0
    collected_ms: int = 0

    @property
    def lag_ms(self) -> int:
        return max(0, self.seen_ms - self.collected_ms) if self.seen_ms else 0


class SqsCounters:
    """Live, thread-safe counters of an SQS source (see SqsStatus)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = SqsStatus()

    def add(self, **deltas: int) -> None:
        """Add to counters by name (``add(messages_received=10)``)."""
        with self._lock:
            values = self._values
            self._values = SqsStatus(
                **{
                    name: getattr(values, name) + deltas.pop(name, 0)
                    for name in SqsStatus.__dataclass_fields__
                }
            )
            if deltas:
                raise KeyError(f"unknown SQS counters: {sorted(deltas)}")

    def set(self, **values: int) -> None:
        """Set gauges by name (``messages_held``, ``lag_ms``)."""
        with self._lock:
            current = {name: getattr(self._values, name) for name in SqsStatus.__dataclass_fields__}
            unknown = set(values) - set(current)
            if unknown:
                raise KeyError(f"unknown SQS counters: {sorted(unknown)}")
            self._values = SqsStatus(**{**current, **values})

    def snapshot(self) -> SqsStatus:
        with self._lock:
            return self._values


class SourceTracker:
    """Live, thread-safe counters of one source."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self._lock = threading.Lock()
        self._state = IDLE
        self._paused = False
        self._done = 0
        self._failed = 0
        self._skipped = 0
        self._records = 0
        self._discarded = 0
        self._refused_records = 0
        self._late = 0
        self._refused_size = 0
        self._bytes = 0
        self._last_error = ""
        self._last_pass_ms = 0
        self._pass_started = 0.0
        self._last_pass_seconds = 0.0
        self._last_success_ms = 0
        self._problems: deque[Problem] = deque(maxlen=MAX_PROBLEMS)
        self.sqs: SqsCounters | None = None
        """Set by an SQS source: its counters join the snapshot."""
        self._lag: dict[str, _StreamLag] = {}
        self._pass_base = (0, 0)
        """Objects done and records at the start of the running pass."""
        self._pass_known = 0

    def set_state(self, state: str) -> None:
        with self._lock:
            if state == RUNNING and self._state != RUNNING:
                self._pass_started = time.monotonic()
                self._pass_base = (self._done, self._records)
                self._pass_known = 0
            self._state = state

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused

    def object_done(
        self, records: int, discarded: int, size: int, *, stream: str = "", time_ms: int = 0
    ) -> None:
        """One object collected; ``time_ms`` (its time, 0 = not known) in ``stream`` moves
        the stream's lag."""
        with self._lock:
            self._done += 1
            self._records += records
            self._discarded += discarded
            self._bytes += size
            if time_ms:
                lag = self._lag.setdefault(stream, _StreamLag())
                lag.collected_ms = max(lag.collected_ms, time_ms)

    def object_listed(self, stream: str, time_ms: int, *, taken: bool = False) -> None:
        """A listing showed an object of ``time_ms`` in ``stream``; ``taken``: collected
        before (it counts as collected, not as work for this pass)."""
        with self._lock:
            if not taken:
                self._pass_known += 1
            if time_ms:
                lag = self._lag.setdefault(stream, _StreamLag())
                lag.seen_ms = max(lag.seen_ms, time_ms)
                if taken:
                    lag.collected_ms = max(lag.collected_ms, time_ms)

    def object_failed(self, where: str, reason: str) -> None:
        with self._lock:
            self._failed += 1
            self._problems.appendleft(Problem(where, reason, _now_ms()))

    def record_refused(self, where: str, reason: str) -> None:
        """One record of an object skipped as unusable (``reason`` names its index)."""
        with self._lock:
            self._refused_records += 1
            self._problems.appendleft(Problem(where, reason, _now_ms()))

    def object_late(self) -> None:
        """An object older than the late window, found by a reconcile (it is collected)."""
        with self._lock:
            self._late += 1

    def object_too_large(self) -> None:
        """The object just counted failed was refused for inflating past the size guard."""
        with self._lock:
            self._refused_size += 1

    def problem(self, where: str, reason: str) -> None:
        """A problem that is not an object failure (a skipped record, a failed delete)."""
        with self._lock:
            self._problems.appendleft(Problem(where, reason, _now_ms()))

    def skipped(self, count: int = 1) -> None:
        with self._lock:
            self._skipped += count

    def error(self, message: str) -> None:
        with self._lock:
            self._last_error = message
            self._problems.appendleft(Problem("", message, _now_ms()))

    def pass_finished(self, state: str) -> None:
        with self._lock:
            self._state = state
            self._last_pass_ms = _now_ms()
            if self._pass_started:
                self._last_pass_seconds = time.monotonic() - self._pass_started
            if state != FAILED:
                self._last_success_ms = self._last_pass_ms

    def snapshot(self) -> SourceStatus:
        sqs = self.sqs.snapshot() if self.sqs is not None else None
        with self._lock:
            state = PAUSED if self._paused and self._state == RUNNING else self._state
            return SourceStatus(
                name=self.name,
                type=self.kind,
                state=state,
                objects_done=self._done,
                objects_failed=self._failed,
                objects_skipped=self._skipped,
                records_spooled=self._records,
                bytes_read=self._bytes,
                last_error=self._last_error,
                last_pass_unix_ms=self._last_pass_ms,
                problems=tuple(self._problems),
                records_discarded=self._discarded,
                records_refused=self._refused_records,
                objects_late=self._late,
                objects_refused_size=self._refused_size,
                last_pass_seconds=self._last_pass_seconds,
                last_success_unix_ms=self._last_success_ms,
                sqs=sqs,
                lag_ms=sqs.lag_ms if sqs is not None else self._lag_ms(),
                pass_objects_done=self._done - self._pass_base[0],
                pass_objects_known=self._pass_known,
                pass_records=self._records - self._pass_base[1],
            )

    def _lag_ms(self) -> int:
        return max((lag.lag_ms for lag in self._lag.values()), default=0)


def _now_ms() -> int:
    return int(time.time() * 1000)
