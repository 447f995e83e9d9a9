"""Where each source has got to, kept in the spool's SQLite file.

A checkpoint update is applied by ``Spool.put`` inside the transaction that spools the object's
records, so "records spooled" and "object taken" can never disagree after a crash.

CloudTrail streams (one per bucket + account/region key prefix) remember:

* ``floor_day``: the first day the stream is read from (``only_logs_after``, else the day the
  source first ran), so later passes never reach further back than asked;
* ``watermark``: the newest key such that every listed key up to it has been taken. Objects
  finish out of order (``workers``); the watermark only moves over a contiguous run, so a crash
  with objects in flight never jumps past one of them;
* the keys taken (``done`` or, with ``skip_on_error``, ``failed``) inside the late window
  (``late_window``, a source setting). A pass re-lists from ``watermark``'s day minus the window,
  so a file that arrives late with a key sorting before the newest one is still found, and the
  remembered keys make sure each file is taken once;
* behind the window, every key taken, compactly: when keys fall behind the window their rows
  are folded into one zlib blob per stream and day (``ct_days``, ~20 bytes a key), so the
  reconcile (a complete listing from ``kept_from``, every ``reconcile_interval``) can tell a file
  that arrived later than the window from one already taken, for the stream's whole life;
* ``kept_from``: the first day ``ct_days`` is complete from (the floor for streams begun with
  this scheme; for spools of earlier builds, which kept keys only 2 days back, their
  watermark's day minus 2 when first read, so an upgrade sends no old file again), and
  ``reconciled_ms``: when the last complete reconcile ended.
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
import zlib
from collections.abc import Iterable
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
CREATE TABLE IF NOT EXISTS ct_days (
    bucket TEXT NOT NULL,
    prefix TEXT NOT NULL,
    day TEXT NOT NULL,
    names BLOB NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, prefix, day)
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


DAY_FOLDER_LENGTH = len("YYYY/MM/DD")


def _pack(prefix: str, day: str, keys: Iterable[str]) -> bytes:
    """A day's taken keys as zlib of their sorted names (what follows ``prefix + day + '/'``)."""
    skip = len(prefix) + DAY_FOLDER_LENGTH + 1
    return zlib.compress("\n".join(sorted(key[skip:] for key in keys)).encode(), 6)


def _unpack(prefix: str, day: str, blob: bytes) -> frozenset[str]:
    text = zlib.decompress(blob).decode()
    head = f"{prefix}{day}/"
    return frozenset(head + name for name in text.split("\n")) if text else frozenset()


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the checkpoint tables; add columns that spools made by earlier builds lack."""
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(ct_objects)")}
    if "attempts" not in columns:
        conn.execute("ALTER TABLE ct_objects ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    stream_columns = {row[1] for row in conn.execute("PRAGMA table_info(ct_streams)")}
    if "kept_from" not in stream_columns:
        conn.execute("ALTER TABLE ct_streams ADD COLUMN kept_from TEXT NOT NULL DEFAULT ''")
    if "reconciled_ms" not in stream_columns:
        conn.execute("ALTER TABLE ct_streams ADD COLUMN reconciled_ms INTEGER NOT NULL DEFAULT 0")


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
class StreamReconciled:
    """A complete listing of the stream from ``kept_from`` ended with nothing left in flight."""

    bucket: str
    prefix: str

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE ct_streams SET reconciled_ms = ? WHERE bucket = ? AND prefix = ?",
            (_now_ms(), self.bucket, self.prefix),
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
    kept_from: str = ""
    """``YYYY/MM/DD`` from which every taken key is remembered; empty: not yet known."""
    reconciled_ms: int = 0
    """When the last complete reconcile ended (0: never)."""


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
                "SELECT floor_day, watermark, kept_from, reconciled_ms FROM ct_streams "
                "WHERE bucket = ? AND prefix = ?",
                (bucket, prefix),
            ).fetchone()
        return None if row is None else StreamState(row[0], row[1], row[2], int(row[3]))

    def set_kept_from(self, bucket: str, prefix: str, day: str) -> None:
        with self._spool.transaction() as conn:
            conn.execute(
                "UPDATE ct_streams SET kept_from = ? WHERE bucket = ? AND prefix = ?",
                (day, bucket, prefix),
            )

    def taken_on_day(self, bucket: str, prefix: str, day: str) -> frozenset[str]:
        """Keys taken on ``day`` (``YYYY/MM/DD``, a trailing '/' allowed) that were folded
        behind the late window."""
        day = day.rstrip("/")
        with self._spool.transaction() as conn:
            row = conn.execute(
                "SELECT names FROM ct_days WHERE bucket = ? AND prefix = ? AND day = ?",
                (bucket, prefix, day),
            ).fetchone()
        return frozenset() if row is None else _unpack(prefix, day, row[0])

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
        """Fold taken keys that sort before ``before_key`` (behind the late window) into the
        stream's per-day sets, in one transaction; returns how many were folded."""
        with self._spool.transaction() as conn:
            rows = conn.execute(
                "SELECT key FROM ct_objects WHERE bucket = ? AND prefix = ? AND key < ? "
                "AND state IN (?, ?)",
                (bucket, prefix, before_key, DONE, FAILED),
            ).fetchall()
            by_day: dict[str, set[str]] = {}
            for (key,) in rows:
                day = key[len(prefix) : len(prefix) + DAY_FOLDER_LENGTH]
                by_day.setdefault(day, set()).add(key)
            for day, keys in by_day.items():
                row = conn.execute(
                    "SELECT names FROM ct_days WHERE bucket = ? AND prefix = ? AND day = ?",
                    (bucket, prefix, day),
                ).fetchone()
                if row is not None:
                    keys |= _unpack(prefix, day, row[0])
                conn.execute(
                    "INSERT OR REPLACE INTO ct_days (bucket, prefix, day, names, count) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (bucket, prefix, day, _pack(prefix, day, keys), len(keys)),
                )
            conn.execute(
                "DELETE FROM ct_objects WHERE bucket = ? AND prefix = ? AND key < ? "
                "AND state IN (?, ?)",
                (bucket, prefix, before_key, DONE, FAILED),
            )
            return len(rows)

    def file(self, path: str) -> FileState | None:
        with self._spool.transaction() as conn:
            row = conn.execute(
                "SELECT size, mtime_ns, state FROM dir_files WHERE path = ?", (path,)
            ).fetchone()
        return None if row is None else FileState(int(row[0]), int(row[1]), str(row[2]))
