"""Where each source has got to, kept in the spool's SQLite file.

A checkpoint update is applied by ``Spool.put`` inside the transaction that spools the object's
records, so "records spooled" and "object taken" can never disagree after a crash.

CloudTrail streams (one per bucket + account/region key prefix) remember:

* ``floor_day``: the first day the stream is read from (``only_logs_after``, else the day the
  source first ran), so later passes never reach further back than asked;
* ``watermark``: the newest key such that every listed key up to it has been taken. Objects
  finish out of order (``workers``); the watermark only moves over a contiguous run, so a crash
  with objects in flight never jumps past one of them;
* the keys taken (``done`` or, with ``skip_on_error``, ``failed``) inside the look-back window.
  A pass re-lists from ``watermark``'s day minus the window, so a file that arrives late with a
  key sorting before the newest one is still found, and the remembered keys make sure each file
  is taken once. Remembered keys expire when they fall behind the window (bounded).
* ``error`` keys (unreadable: refused, archived, network) are retried on the next passes and
  pin the window until taken; with ``skip_on_error`` a refusal that retrying does not cure is
  given up (``failed``) after ``GIVE_UP_AFTER`` passes, so one archived object cannot hold the
  window open for ever. Without ``skip_on_error`` they are retried until an admin acts.

Directory sources remember each file's path, size and mtime: a rerun does not resend a file,
a changed file is read again.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS ct_streams (
    bucket TEXT NOT NULL,
    prefix TEXT NOT NULL,
    floor_day TEXT NOT NULL DEFAULT '',
    watermark TEXT NOT NULL DEFAULT '',
    updated_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, prefix)
);
CREATE TABLE IF NOT EXISTS ct_objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    prefix TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    time_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX IF NOT EXISTS ct_objects_by_stream ON ct_objects (bucket, prefix, key);
CREATE TABLE IF NOT EXISTS dir_files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    time_ms INTEGER NOT NULL
);
"""

DONE = "done"
"""Records spooled (possibly none, when all were discarded)."""
FAILED = "failed"
"""Unusable and skipped (``skip_on_error``): taken, never retried."""
ERROR = "error"
"""Unusable without ``skip_on_error``: not taken, retried on the next pass."""


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the checkpoint tables; add columns that spools made by earlier builds lack."""
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(ct_objects)")}
    if "attempts" not in columns:
        conn.execute("ALTER TABLE ct_objects ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")


class CheckpointUpdate(Protocol):
    """A checkpoint change applied inside the spool's write transaction."""

    def apply(self, conn: sqlite3.Connection) -> None: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class ObjectTaken:
    """An S3 object of a CloudTrail stream has been handled (``state`` DONE/FAILED/ERROR)."""

    bucket: str
    prefix: str
    key: str
    state: str = DONE
    reason: str = ""
    watermark: str = ""
    """When non-empty: every key of the stream up to this one is now taken."""

    def apply(self, conn: sqlite3.Connection) -> None:
        now = _now_ms()
        conn.execute(
            "INSERT INTO ct_objects (bucket, key, prefix, state, reason, time_ms, attempts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bucket, key) DO UPDATE SET "
            "prefix = excluded.prefix, state = excluded.state, reason = excluded.reason, "
            "time_ms = excluded.time_ms, attempts = ct_objects.attempts + excluded.attempts",
            (
                self.bucket,
                self.key,
                self.prefix,
                self.state,
                self.reason,
                now,
                1 if self.state == ERROR else 0,
            ),
        )
        if self.watermark:
            conn.execute(
                "INSERT INTO ct_streams (bucket, prefix, watermark, updated_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (bucket, prefix) DO UPDATE SET "
                "watermark = MAX(watermark, excluded.watermark), updated_ms = excluded.updated_ms",
                (self.bucket, self.prefix, self.watermark, now),
            )


@dataclass(frozen=True, slots=True)
class WatermarkMoved:
    """The watermark moves without a new object (objects finished out of order)."""

    bucket: str
    prefix: str
    watermark: str

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO ct_streams (bucket, prefix, watermark, updated_ms) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (bucket, prefix) DO UPDATE SET "
            "watermark = MAX(watermark, excluded.watermark), updated_ms = excluded.updated_ms",
            (self.bucket, self.prefix, self.watermark, _now_ms()),
        )


@dataclass(frozen=True, slots=True)
class FileTaken:
    """A local file has been handled at this size and mtime."""

    path: str
    size: int
    mtime_ns: int
    state: str = DONE
    reason: str = ""

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO dir_files (path, size, mtime_ns, state, reason, time_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self.path, self.size, self.mtime_ns, self.state, self.reason, _now_ms()),
        )


@dataclass(frozen=True, slots=True)
class StreamState:
    floor_day: str
    """``YYYY/MM/DD``; empty when never set."""
    watermark: str
    """Newest key with everything before it taken; empty when none yet."""


@dataclass(frozen=True, slots=True)
class FileState:
    size: int
    mtime_ns: int
    state: str


class Transactions(Protocol):
    """What checkpoints need of the spool: its connection, one transaction at a time. A protocol
    rather than the Spool itself, since the spool applies checkpoint updates and so imports this
    module."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


class Checkpoints:
    """Reads and small writes of checkpoint state through the spool's connection."""

    def __init__(self, spool: Transactions) -> None:
        self._spool = spool

    def stream(self, bucket: str, prefix: str) -> StreamState | None:
        with self._spool.transaction() as conn:
            row = conn.execute(
                "SELECT floor_day, watermark FROM ct_streams WHERE bucket = ? AND prefix = ?",
                (bucket, prefix),
            ).fetchone()
        return None if row is None else StreamState(row[0], row[1])

    def set_floor(self, bucket: str, prefix: str, day: str) -> None:
        with self._spool.transaction() as conn:
            conn.execute(
                "INSERT INTO ct_streams (bucket, prefix, floor_day, updated_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (bucket, prefix) DO UPDATE SET "
                "floor_day = excluded.floor_day, updated_ms = excluded.updated_ms",
                (bucket, prefix, day, _now_ms()),
            )

    def taken_keys(self, bucket: str, prefix: str, after_key: str) -> set[str]:
        """Keys of the stream already taken (done or failed) that sort after ``after_key``."""
        with self._spool.transaction() as conn:
            rows = conn.execute(
                "SELECT key FROM ct_objects WHERE bucket = ? AND prefix = ? AND key > ? "
                "AND state IN (?, ?)",
                (bucket, prefix, after_key, DONE, FAILED),
            ).fetchall()
        return {row[0] for row in rows}

    def oldest_error_key(self, bucket: str, prefix: str) -> str:
        """The oldest key that failed without skip_on_error (to be retried), or ''."""
        with self._spool.transaction() as conn:
            row = conn.execute(
                "SELECT MIN(key) FROM ct_objects WHERE bucket = ? AND prefix = ? AND state = ?",
                (bucket, prefix, ERROR),
            ).fetchone()
        return str(row[0] or "")

    def attempts(self, bucket: str, key: str) -> int:
        """How many passes already failed to read this object (ERROR outcomes)."""
        with self._spool.transaction() as conn:
            row = conn.execute(
                "SELECT attempts FROM ct_objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
        return int(row[0]) if row else 0

    def expire(self, bucket: str, prefix: str, before_key: str) -> int:
        """Forget taken keys that sort before ``before_key`` (behind the look-back window)."""
        with self._spool.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM ct_objects WHERE bucket = ? AND prefix = ? AND key < ? "
                "AND state IN (?, ?)",
                (bucket, prefix, before_key, DONE, FAILED),
            )
            return int(cursor.rowcount)

    def file(self, path: str) -> FileState | None:
        with self._spool.transaction() as conn:
            row = conn.execute(
                "SELECT size, mtime_ns, state FROM dir_files WHERE path = ?", (path,)
            ).fetchone()
        return None if row is None else FileState(int(row[0]), int(row[1]), str(row[2]))
