"""Progress: the display of ``trailwarden agent run --once``, and the service's progress log.

``--once`` on a terminal: one line rewritten in place (objects, records, bytes, rate, spool,
acks). Otherwise (cron, CI, a pipe): a plain log line every ``LOG_EVERY_S`` seconds, so logs
stay readable.

``agent run`` (the service): ``ServiceProgress`` logs, every ``progress_log_seconds``, one line
per source whose pass is running — objects done of those its listing has found so far, records,
the rate since the last line, and the lag behind the newest object — so a long backfill shows
in the journal how far it is and how fast it goes. Idle sources log nothing.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from trailwarden.agent.spool import SpoolStats
from trailwarden.agent.status import PAUSED, RUNNING, SourceStatus
from trailwarden.common.timeparse import human_duration

log = logging.getLogger(__name__)

TTY_REFRESH_S = 0.5
LOG_EVERY_S = 10.0


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover - the loop returns


def progress_line(
    sources: Sequence[SourceStatus], spool: SpoolStats, elapsed: float, base: Sequence[int]
) -> str:
    """One line summing the sources since ``base`` (objects, records, bytes at start)."""
    objects = sum(s.objects_done for s in sources) - base[0]
    records = sum(s.records_spooled for s in sources) - base[1]
    read = sum(s.bytes_read for s in sources) - base[2]
    failed = sum(s.objects_failed for s in sources)
    rate = records / elapsed if elapsed > 0 else 0.0
    parts = [
        f"objects {objects:,}" + (f" ({failed:,} failed)" if failed else ""),
        f"records {records:,}",
        f"read {human_bytes(read)}",
        f"{rate:,.0f} records/s",
        f"waiting for acks {spool.batches:,} batches / {human_bytes(spool.bytes)}",
    ]
    if spool.paused:
        parts.append("PAUSED: spool full")
    return " | ".join(parts)


class Progress:
    """Shows collection progress until ``stop``; a TTY gets a live line, others log lines."""

    def __init__(
        self,
        sources: Callable[[], Sequence[SourceStatus]],
        spool: Callable[[], SpoolStats],
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
    ) -> None:
        """``sources``: e.g. ``collector.status``; ``spool``: e.g. ``spool.stats``."""
        self._sources = sources
        self._spool = spool
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty() if tty is None else tty
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._base = (0, 0, 0)

    def start(self) -> None:
        statuses = self._sources()
        self._base = (
            sum(s.objects_done for s in statuses),
            sum(s.records_spooled for s in statuses),
            sum(s.bytes_read for s in statuses),
        )
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()

    def line(self) -> str:
        return progress_line(
            self._sources(), self._spool(), time.monotonic() - self._started, self._base
        )

    def stop(self) -> None:
        """Stop updating and print the final line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        final = self.line()
        if self._tty:
            self._stream.write(f"\r\x1b[K{final}\n")
            self._stream.flush()
        else:
            log.info("progress: %s", final)

    def _loop(self) -> None:
        every = TTY_REFRESH_S if self._tty else LOG_EVERY_S
        while not self._stop.wait(every):
            text = self.line()
            if self._tty:
                self._stream.write(f"\r\x1b[K{text}")
                self._stream.flush()
            else:
                log.info("progress: %s", text)


def source_progress_line(status: SourceStatus, records_per_second: float) -> str:
    """One running source's progress, as ``ServiceProgress`` logs it."""
    return (
        f"progress: source {status.name}: objects {status.pass_objects_done:,}"
        f"/{status.pass_objects_known:,} known, records {status.pass_records:,}, "
        f"{records_per_second:,.0f} records/s, lag {human_duration(status.lag_ms)}"
        + (" (paused: spool full)" if status.state == PAUSED else "")
    )


class ServiceProgress:
    """Logs each running source's progress every ``every`` seconds until ``stop``."""

    def __init__(self, sources: Callable[[], Sequence[SourceStatus]], every: float) -> None:
        self._sources = sources
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._last: dict[str, tuple[float, int]] = {}
        """Source name -> (monotonic time, records spooled) at the previous line."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def log_once(self) -> None:
        """One line per running source (the loop's body; tests call it directly too)."""
        now = time.monotonic()
        for status in self._sources():
            then, records = self._last.get(status.name, (now, status.records_spooled))
            self._last[status.name] = (now, status.records_spooled)
            if status.state not in (RUNNING, PAUSED):
                continue
            rate = (status.records_spooled - records) / (now - then) if now > then else 0.0
            log.info("%s", source_progress_line(status, rate))

    def _loop(self) -> None:
        now = time.monotonic()
        for status in self._sources():  # the first line's rate counts from here
            self._last[status.name] = (now, status.records_spooled)
        while not self._stop.wait(self._every):
            self.log_once()
