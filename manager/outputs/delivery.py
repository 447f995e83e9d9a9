"""Outputs fed from the store by a delivered-cursor: what is acknowledged reaches every output.

The ingest commits a batch and acknowledges it; it never writes an output itself. Each output
(the alerts file, archives.json, webhooks, Slack, e-mail) has a ``Delivery``: a thread that reads
the alerts stored after the output's cursor (``AlertStore.follow``, oldest first), hands them
to ``Output.deliver``, and only when that returned — the alerts durable at the output — commits
the cursor past them (``AlertStore.save_output_cursor``). So:

- a failing output (disk full, endpoint down) holds nothing up: acks continue, alerts wait in
  the store, the loop retries (after ``retry_seconds``, then longer) and replays from the cursor
  once the output has room again;
- a crash between ``deliver`` and the cursor commit would deliver the last page twice, so an
  output that can see what it holds (the alerts file) says, in ``recover()``, the id of the last
  alert it has; the loop skips that alert and everything before it in the page;
- a new output starts at the store's current end (it does not replay history it never had).

Alerts removed by retention before an output delivered them are not delivered (retention runs
on days; a delivery backlog of days is reported in ``admin stats`` long before).

Failures in a row wait longer each time (``retry_wait``: doubling from ``retry_seconds`` up to
``max_retry_seconds``, an output's ``retry_*`` keys), so a receiver that is down for an hour is
not hammered, and the first
attempt after it returns delivers the whole backlog in order. An output that gathers bursts
(e-mail digests) sets ``gather_seconds``: woken by a commit, the loop waits that long before
reading, so the alerts of the burst arrive in one page.

The loop is not tied to alerts: ``feed`` reads what follows a cursor (default: the output's
alerts via ``AlertStore.follow``; the archives file reads the store's event archive).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar, cast

from trailwarden.common.errors import OutputError, StoreError
from trailwarden.manager.store.base import AlertFilter, AlertQuery, AlertStore

log = logging.getLogger(__name__)

PAGE = 500
"""Alerts read from the store and delivered per step."""
POLL_SECONDS = 1.0
"""How often the loop looks for alerts when no commit woke it."""
RETRY_SECONDS = 1.0
"""Wait after a first failed delivery before replaying from the cursor (it doubles after each
further failure in a row, up to ``MAX_RETRY_SECONDS``)."""
MAX_RETRY_SECONDS = 1.0
"""The cap of the doubling wait; outputs with a receiver far away set their own (300 s)."""
REPORT_EVERY = 30
"""A lasting failure is logged on its first attempt and then every this many attempts."""


class Entry(Protocol):
    """What a feed yields: an alert, or an archived event."""

    @property
    def id(self) -> str: ...

    @property
    def timestamp(self) -> str: ...


T = TypeVar("T", bound=Entry)
T_contra = TypeVar("T_contra", bound=Entry, contravariant=True)
Feed = Callable[[int | None], tuple[Sequence[T], int]]
"""Entries after a cursor (None: none, only the current end), oldest first, and the next cursor."""


class Output(Protocol[T_contra]):
    """Somewhere alerts go after the commit (the alerts file, a webhook, ...)."""

    name: str
    """Key of the output's delivered-cursor in the store; stable across restarts."""

    @property
    def min_level(self) -> int:
        """Alerts below this level are not delivered (the loop does not read them)."""
        ...

    def recover(self) -> str:
        """Make the output usable after a crash or failure (e.g. truncate a torn line); return the
        id of the last alert it durably holds, or '' when it cannot tell (then nothing is
        skipped). Raises OutputError when it still cannot be used."""
        ...

    def deliver(self, batch: Sequence[T_contra]) -> None:
        """Deliver the alerts durably, in order, or raise OutputError (nothing is taken as
        delivered then; the batch comes again)."""
        ...

    def close(self) -> None: ...


class Delivery(Generic[T]):
    """Feeds one output from the store, from its delivered-cursor, on a thread of its own."""

    def __init__(
        self,
        store: AlertStore,
        output: Output[T],
        *,
        page: int = PAGE,
        poll_seconds: float = POLL_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
        gather_seconds: float = 0.0,
        feed: Feed[T] | None = None,
    ) -> None:
        """``feed``: None reads the store's alerts at the output's ``min_level`` and above."""
        self.store = store
        self.output = output
        self.page = page
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max(max_retry_seconds, retry_seconds)
        self.gather_seconds = gather_seconds
        query = AlertQuery(filter=AlertFilter(min_level=output.min_level), limit=page)
        self._feed: Feed[T] = feed or cast("Feed[T]", lambda cursor: store.follow(query, cursor))
        self._cursor: int | None = None
        self._top = 0
        self._needs_recover = True
        self._skip_through = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        """Alerts delivered since start."""
        self.failures = 0
        """Failed delivery attempts since start."""
        self.retries = 0
        """Attempts made after a failed one (each replays from the cursor)."""
        self.skipped_present = 0
        """Alerts found already at the output after a crash, and not delivered again."""
        self.last_error = ""
        self._failing_since: float | None = None
        self._oldest_pending = ""

    # ---- life cycle ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load (or, for a new output, create at the store's end) the cursor. Call before the
        manager accepts batches, so a new output misses nothing committed after it."""
        cursor = self.store.output_cursor(self.output.name)
        if cursor is None:
            _, cursor = self._feed(None)
            self.store.save_output_cursor(self.output.name, cursor)
            log.info("stage=output %s starts at store cursor %d", self.output.name, cursor)
        self._cursor = cursor

    def start(self) -> None:
        if self._cursor is None:
            self.prepare()
        self._thread = threading.Thread(
            target=self._run, name=f"output-{self.output.name}", daemon=True
        )
        self._thread.start()

    def notify(self) -> None:
        """A batch was committed: look for its alerts now rather than at the next poll."""
        self._wake.set()

    def stop(self, final_pass: bool = True) -> None:
        """Stop the thread (after one last pass, so a clean stop leaves no backlog)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        if final_pass:
            try:
                self.deliver_pending()
            except (OutputError, StoreError) as exc:
                log.warning(
                    "stage=output %s: %d alert(s) left for the next start: %s",
                    self.output.name,
                    self.backlog,
                    exc,
                )
        self.output.close()

    # ---- delivery --------------------------------------------------------------------------

    def deliver_pending(self) -> int:
        """Deliver everything after the cursor, page by page; returns alerts delivered.
        Raises OutputError or StoreError on the first page that fails (the cursor stays)."""
        with self._lock:
            if self._cursor is None:
                self.prepare()
            total = 0
            _, self._top = self._feed(None)  # the store's end: for backlog
            while True:
                if self._needs_recover:
                    self._skip_through = self.output.recover()
                    self._needs_recover = False
                assert self._cursor is not None
                alerts, next_cursor = self._feed(self._cursor)
                if not alerts and next_cursor == self._cursor:
                    self._oldest_pending = ""
                    return total
                self._oldest_pending = alerts[0].timestamp if alerts else ""
                batch = self._without_present(alerts)
                try:
                    if batch:
                        self.output.deliver(batch)
                except OutputError:
                    self._needs_recover = True
                    raise
                self.store.save_output_cursor(self.output.name, next_cursor)
                self._cursor = next_cursor
                self._skip_through = ""
                self.delivered += len(batch)
                total += len(batch)

    def _without_present(self, alerts: Sequence[T]) -> Sequence[T]:
        """Drop the alerts the output already holds (delivered, then a crash before the cursor
        commit): the last one it holds and every one before it in this page."""
        if not self._skip_through:
            return alerts
        for index, alert in enumerate(alerts):
            if alert.id == self._skip_through:
                self.skipped_present += index + 1
                log.info(
                    "stage=output %s already holds %d alert(s) after its cursor (a crash before "
                    "the cursor moved); not writing them again",
                    self.output.name,
                    index + 1,
                )
                return alerts[index + 1 :]
        return alerts

    def retry_wait(self, failures: int) -> float:
        """The wait after the ``failures``-th failed attempt in a row: doubling, capped."""
        exponent = min(max(failures - 1, 0), 32)
        return float(min(self.retry_seconds * 2**exponent, self.max_retry_seconds))

    def _run(self) -> None:
        attempts = 0
        if self.gather_seconds:
            # The first pass gathers too: at start the backlog, and the batches agents resend to
            # a manager that just started, would otherwise split into one digest per commit
            # that lands before the pass (a burst cut in two on a busy machine, seen in CI).
            self._stop.wait(self.gather_seconds)
        while not self._stop.is_set():
            if attempts:
                self.retries += 1
            try:
                count = self.deliver_pending()
            except (OutputError, StoreError) as exc:
                attempts += 1
                self.failures += 1
                self.last_error = str(exc)
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                if attempts == 1 or attempts % REPORT_EVERY == 0:
                    log.error(
                        "stage=output %s delivery failed (attempt %d, %d alert(s) waiting in the "
                        "store, acks continue): %s",
                        self.output.name,
                        attempts,
                        self.backlog,
                        exc,
                    )
                self._stop.wait(self.retry_wait(attempts))
                continue
            if attempts:
                waited = time.monotonic() - (self._failing_since or time.monotonic())
                log.warning(
                    "stage=output %s delivering again after %d failed attempt(s) over %.0fs: "
                    "%d alert(s) replayed from the store",
                    self.output.name,
                    attempts,
                    waited,
                    count,
                )
                attempts = 0
                self._failing_since = None
                self.last_error = ""
            if self._wake.wait(self.poll_seconds) and self.gather_seconds:
                self._stop.wait(self.gather_seconds)  # let the rest of a burst be committed
            self._wake.clear()

    # ---- reporting -------------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        return self._cursor or 0

    @property
    def backlog(self) -> int:
        """Alerts stored after the cursor (before the level filter), as of the last look."""
        return max(0, self._top - self.cursor)

    def snapshot(self) -> dict[str, Any]:
        """What ``admin stats`` shows under ``pipeline.outputs.<name>``."""
        return {
            "cursor": self.cursor,
            "backlog": self.backlog,
            "delivered": self.delivered,
            "failures": self.failures,
            "retries": self.retries,
            # Remote outputs count what the receiver took (``delivered`` also counts the alerts
            # their rule/group filters passed over and the ones refused for good).
            "sent": int(getattr(self.output, "sent", self.delivered)),
            "refused": int(getattr(self.output, "refused", 0)),
            "skipped_already_present": self.skipped_present,
            "failing_for_seconds": (
                round(time.monotonic() - self._failing_since, 1)
                if self._failing_since is not None
                else 0
            ),
            "oldest_pending": self._oldest_pending,
            "last_error": self.last_error,
        }
