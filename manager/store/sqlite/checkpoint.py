"""Write-ahead-log checkpoints on their own thread, off the commit path.

In WAL mode SQLite appends each commit to ``manager.db-wal`` and, every N pages, the committing
connection copies the log back into the database file and syncs it — inside that commit. During
ingest that was about a quarter of the committing thread's time (py-spy on bench/ingest.py),
and every batch of every agent waits on that one thread. Here a thread of its own checkpoints
twice a second with its own connection (PASSIVE: it never blocks a writer or a reader), so the
copying and syncing overlap the next commits, on the other core.

Commits still checkpoint by themselves once the log passes ``SAFETY_NET_PAGES`` (if this thread
falls behind or stops, the log cannot grow without bound). When the log file has grown past
``TRUNCATE_ABOVE_BYTES`` a TRUNCATE checkpoint shrinks it again (the log cannot restart from
its beginning while analysis workers keep reading, so it does grow); that one holds writers
back while it runs, which is why it is not the normal mode. Crash safety does
not depend on any of this: a WAL database is consistent whenever a checkpoint runs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from trailwarden.common.errors import StoreError
from trailwarden.manager.store.sqlite.database import Database

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.5
SAFETY_NET_PAGES = 100_000
"""Commits checkpoint by themselves past this many log pages (~400 MB)."""
TRUNCATE_ABOVE_BYTES = 64 * 1024 * 1024


class WalCheckpointer:
    """A thread that checkpoints ``database``'s write-ahead log every ``interval`` seconds."""

    def __init__(
        self,
        database: Database,
        interval: float = INTERVAL_SECONDS,
        truncate_above: int = TRUNCATE_ABOVE_BYTES,
    ) -> None:
        self.database = database
        self.interval = interval
        self.truncate_above = truncate_above
        self.checkpoints = 0
        """Checkpoints run (for tests and the curious)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    @property
    def wal_path(self) -> Path:
        return self.database.path.with_name(self.database.path.name + "-wal")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread (one last checkpoint first, so a clean stop leaves a
        small log behind)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            conn = self.database.connect()
        except StoreError as exc:
            log.error("stage=store wal checkpoints off: %s", exc)
            return
        try:
            while not self._stop.wait(self.interval):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if _size(self.wal_path) > self.truncate_above:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            self.checkpoints += 1
        except sqlite3.Error as exc:
            # Busy or an I/O error: the next round tries again, and commits checkpoint by
            # themselves past the safety net.
            log.warning("stage=store wal checkpoint failed: %s", exc)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
