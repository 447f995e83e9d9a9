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
    last_pass_seconds: float = 0.0
    """How long the last finished pass took (metrics; not on the wire)."""
    last_success_unix_ms: int = 0
    """When a pass last finished without failing (metrics; not on the wire)."""


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
        self._bytes = 0
        self._last_error = ""
        self._last_pass_ms = 0
        self._pass_started = 0.0
        self._last_pass_seconds = 0.0
        self._last_success_ms = 0
        self._problems: deque[Problem] = deque(maxlen=MAX_PROBLEMS)

    def set_state(self, state: str) -> None:
        with self._lock:
            if state == RUNNING and self._state != RUNNING:
                self._pass_started = time.monotonic()
            self._state = state

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused

    def object_done(self, records: int, discarded: int, size: int) -> None:
        with self._lock:
            self._done += 1
            self._records += records
            self._discarded += discarded
            self._bytes += size

    def object_failed(self, where: str, reason: str) -> None:
        with self._lock:
            self._failed += 1
            self._problems.appendleft(Problem(where, reason, _now_ms()))

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
                last_pass_seconds=self._last_pass_seconds,
                last_success_unix_ms=self._last_success_ms,
            )


def _now_ms() -> int:
    return int(time.time() * 1000)
