"""The agent's durable spool: records wait here, on disk, until the manager acknowledges them.

One SQLite file (WAL) under the agent home holds the batches *and* the sources' checkpoints
(agent/checkpoint.py), so a source's checkpoint advances in the same transaction that puts the
object's records in the spool: after a crash either both happened or neither did. A batch is
deleted only when the manager acks it (``ack``). Sequence numbers come from an AUTOINCREMENT key,
so they keep increasing across restarts and are never reused after deletions.

The spool is bounded in bytes of record payload. ``put`` refuses with SpoolFullError when the
records would not fit; the caller waits (``wait_for_space``) and retries: backpressure, never
drops. An object larger than the whole limit still goes into an empty spool, else it could never
be delivered. Disk errors (disk full, I/O) become SpoolError; nothing is half-written.

Durability: ``synchronous=NORMAL`` in WAL mode survives a killed process (``kill -9``) without
losing a committed put; after a power cut the last commits may roll back, records and checkpoint
together, so the objects are simply fetched again.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trailwarden.agent import checkpoint as checkpoint_schema
from trailwarden.common.errors import SpoolError, SpoolFullError
from trailwarden.common.model import RecordBatch, SourceMeta

if TYPE_CHECKING:
    from trailwarden.agent.checkpoint import CheckpointUpdate

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
CHECKPOINT_EVERY_BYTES = 8 << 20
"""Background WAL checkpoint after this much new payload (or CHECKPOINT_EVERY_S)."""
CHECKPOINT_EVERY_S = 5.0
CACHE_KIB = 512
"""SQLite's page cache of the spool's connection (its default is 2,000 KiB). Batches are written
once and read back once, so a cache buys little, and it counts in the agent's memory."""
_FORMAT = b"\x01"
"""First byte of every batch blob: the blob layout's version."""
_ACK_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_batches (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    account_alias TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    size INTEGER NOT NULL,
    records BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """What the spool holds, for status reports."""

    bytes: int
    """Record payload bytes waiting for acks."""
    batches: int
    """Batches waiting for acks."""
    limit_bytes: int
    """The configured bound."""
    paused: bool
    """Fetching is waiting for space right now."""
    full_waits: int
    """How many times fetching had to pause since start."""


class Spool:
    """Thread-safe durable queue of record batches (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        limit_bytes: int,
        *,
        max_batch_records: int = 500,
        max_batch_bytes: int = 1 << 20,
    ) -> None:
        if limit_bytes <= 0 or max_batch_records <= 0 or max_batch_bytes <= 0:
            raise ValueError("spool limits must be positive")
        self.path = Path(path)
        self.limit_bytes = limit_bytes
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self._cond = threading.Condition(threading.RLock())
        self._closed = False
        self._paused = False
        self._full_waits = 0
        self._acks = 0
        self._puts = 0
        """Committed write groups, so waiters can tell a new batch may exist."""
        self._db = threading.Lock()
        """Serialises use of the one SQLite connection (writes, reads, acks)."""
        self._queue: list[_PutRequest] = []
        self._writing = False
        self._reserved = 0
        """Bytes of queued puts not yet committed (counted against the limit)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # WAL checkpoints (copy + fsync) run in a background thread, not in the commit that
            # happens to cross the threshold while holding the spool lock.
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn.executescript(_SCHEMA)
            checkpoint_schema.ensure_schema(self._conn)
            row = self._conn.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM spool_batches"
            ).fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
        self._bytes = int(row[0])
        self._batches = int(row[1])
        self._ack_listeners: list[Callable[[Sequence[int]], None]] = []
        self._checkpoint_wanted = threading.Event()
        self._written_since_checkpoint = 0
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="spool-checkpoint", daemon=True
        )
        self._checkpointer.start()

    # ---- writing -------------------------------------------------------------------------

    def put(
        self,
        source: SourceMeta,
        records: Sequence[bytes],
        checkpoint: CheckpointUpdate | None = None,
    ) -> list[int]:
        """Durably append ``records`` (split into batches) and apply ``checkpoint`` atomically.

        Returns the new batch sequence numbers. SpoolFullError when they do not fit (unless the
        spool is empty); SpoolError on disk problems, with nothing written.

        Concurrent puts are group-committed: the first caller to find no write in progress
        writes every queued put in one transaction while the others wait for the result. Each
        put stays atomic with its checkpoint; a failed transaction fails every put in it (each
        caller retries), and a put is never half-written.
        """
        lengths = [len(r) for r in records]
        size = sum(lengths)
        batches = [
            (_encode(lengths[first:last], records[first:last]), last - first, payload)
            for first, last, payload in self._split(lengths)
        ]
        request = _PutRequest(source, batches, checkpoint, size)
        with self._cond:
            self._check_open()
            used = self._bytes + self._reserved
            if records and used > 0 and used + size > self.limit_bytes:
                if not self._paused:
                    self._paused = True
                    self._full_waits += 1
                    log.warning(
                        "spool: full (%d of %d bytes); fetching pauses until the manager acks",
                        used,
                        self.limit_bytes,
                    )
                raise SpoolFullError(
                    f"spool {self.path} full: {used} + {size} > {self.limit_bytes} bytes"
                )
            if not batches and checkpoint is None:
                return []
            self._reserved += size
            self._queue.append(request)
            while not request.done and self._writing:
                self._cond.wait()
            if not request.done:
                self._writing = True
                group, self._queue = self._queue, []
        if not request.done:
            self._write_group(group)
        error = request.error
        if isinstance(error, SpoolError):
            # The group's error, re-raised per caller (one exception object must not be raised
            # in several threads at once: its traceback would be shared).
            raise SpoolError(str(error)) from error
        if error is not None:  # a bug, not the disk: do not let callers retry it for ever
            raise RuntimeError(f"spool {self.path}: write failed: {error!r}") from error
        return request.sequences

    def _write_group(self, group: list[_PutRequest]) -> None:
        """One transaction for every queued put; then wake their callers."""
        error: BaseException | None = None
        now_ms = int(time.time() * 1000)
        try:
            with self._db, self._write() as conn:
                for request in group:
                    request.sequences = []
                    for blob, count, payload in request.batches:
                        cursor = conn.execute(
                            "INSERT INTO spool_batches (source, bucket, key, account_id, region, "
                            "account_alias, record_count, size, records, created_ms) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                request.source.source,
                                request.source.bucket,
                                request.source.key,
                                request.source.account_id,
                                request.source.region,
                                request.source.account_alias,
                                count,
                                payload,
                                blob,
                                now_ms,
                            ),
                        )
                        request.sequences.append(int(cursor.lastrowid or 0))
                    if request.checkpoint is not None:
                        request.checkpoint.apply(conn)
        except BaseException as exc:  # every caller in the group sees the failure
            error = exc
        with self._cond:
            written = sum(r.size for r in group)
            self._reserved -= written
            if error is None:
                self._bytes += written
                self._batches += sum(len(r.sequences) for r in group)
                self._puts += 1
                self._written_since_checkpoint += written
                if self._written_since_checkpoint >= CHECKPOINT_EVERY_BYTES:
                    self._checkpoint_wanted.set()
            for request in group:
                request.done = True
                request.error = error
                if error is not None:
                    request.sequences = []
            self._writing = False
            self._cond.notify_all()

    def _split(self, lengths: Sequence[int]) -> Iterator[tuple[int, int, int]]:
        """(first, last, payload bytes) of each batch: at most max_batch_records records and
        max_batch_bytes bytes, but never less than one record."""
        total = sum(lengths)
        if len(lengths) <= self.max_batch_records and total <= self.max_batch_bytes:
            if lengths:
                yield 0, len(lengths), total
            return
        first = 0
        payload = 0
        for index, length in enumerate(lengths):
            if index > first and (
                index - first >= self.max_batch_records or payload + length > self.max_batch_bytes
            ):
                yield first, index, payload
                first, payload = index, 0
            payload += length
        if first < len(lengths):
            yield first, len(lengths), payload

    def wait_for_space(self, stop: threading.Event, timeout: float | None = None) -> bool:
        """Block until an ack frees space (or the spool is empty); call it after SpoolFullError.

        Returns True when the caller should retry, False on ``stop`` or timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            seen = self._acks
            while not stop.is_set() and not self._closed:
                if self._bytes == 0 or self._acks > seen:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                # Short slices so a set ``stop`` (not a condition) is noticed promptly.
                self._cond.wait(0.2 if remaining is None else min(0.2, remaining))
            return False

    # ---- reading and acking --------------------------------------------------------------

    def pending(self, after_sequence: int = 0, limit: int = 64) -> list[RecordBatch]:
        """Unacked batches with ``sequence > after_sequence``, oldest first."""
        self._check_open()
        with self._db:
            try:
                rows = self._conn.execute(
                    "SELECT sequence, source, bucket, key, account_id, region, account_alias, "
                    "records FROM spool_batches WHERE sequence > ? ORDER BY sequence LIMIT ?",
                    (after_sequence, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise SpoolError(f"spool {self.path}: cannot read batches: {exc}") from exc
        return [
            RecordBatch(
                sequence=int(row[0]),
                source=SourceMeta(
                    source=row[1],
                    bucket=row[2],
                    key=row[3],
                    account_id=row[4],
                    region=row[5],
                    account_alias=row[6],
                ),
                records=_decode(row[7], self.path, int(row[0])),
            )
            for row in rows
        ]

    def wait_for_batches(self, after_sequence: int, timeout: float) -> bool:
        """Block until a batch with ``sequence > after_sequence`` exists (True) or timeout."""
        deadline = time.monotonic() + timeout
        while not self._closed:
            with self._cond:
                seen = self._puts
            with self._db:
                try:
                    row = self._conn.execute(
                        "SELECT 1 FROM spool_batches WHERE sequence > ? LIMIT 1", (after_sequence,)
                    ).fetchone()
                except sqlite3.Error as exc:
                    raise SpoolError(f"spool {self.path}: cannot read batches: {exc}") from exc
            if row is not None:
                return True
            with self._cond:
                while self._puts == seen and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
        return False

    def ack(self, sequences: Iterable[int]) -> None:
        """Delete acknowledged batches (unknown sequences are ignored); wakes waiting fetchers."""
        wanted = sorted({int(s) for s in sequences})
        if not wanted:
            return
        self._check_open()
        freed = 0
        removed: list[int] = []
        with self._db, self._write() as conn:
            for start in range(0, len(wanted), _ACK_CHUNK):
                chunk = wanted[start : start + _ACK_CHUNK]
                marks = ",".join("?" * len(chunk))
                for sequence, size in conn.execute(
                    f"DELETE FROM spool_batches WHERE sequence IN ({marks}) "
                    "RETURNING sequence, size",
                    chunk,
                ).fetchall():
                    freed += int(size)
                    removed.append(int(sequence))
        with self._cond:
            self._bytes -= freed
            self._batches -= len(removed)
            if removed:
                self._acks += 1
                if self._paused:
                    self._paused = False
                    log.info(
                        "spool: acks freed %d bytes (%d of %d used); fetching resumes",
                        freed,
                        self._bytes,
                        self.limit_bytes,
                    )
                self._cond.notify_all()
            listeners = list(self._ack_listeners)
        for listener in listeners if removed else ():
            try:
                listener(removed)
            except Exception:  # a listener's bug must not break the link's acks
                log.exception("spool: ack listener failed")

    def add_ack_listener(self, listener: Callable[[Sequence[int]], None]) -> None:
        """Call ``listener`` with the sequences of every ack, after they are deleted.

        Runs on the acking thread (the link's): keep it short. Acks are not replayed: a
        listener that registers batches after spooling them asks ``unacked`` what was
        acknowledged before it registered.
        """
        with self._cond:
            self._ack_listeners.append(listener)

    def remove_ack_listener(self, listener: Callable[[Sequence[int]], None]) -> None:
        with self._cond:
            if listener in self._ack_listeners:
                self._ack_listeners.remove(listener)

    def unacked(self, sequences: Iterable[int]) -> set[int]:
        """Which of ``sequences`` are still waiting for the manager's ack."""
        wanted = sorted({int(s) for s in sequences})
        found: set[int] = set()
        if not wanted:
            return found
        self._check_open()
        with self._db:
            try:
                for start in range(0, len(wanted), _ACK_CHUNK):
                    chunk = wanted[start : start + _ACK_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    found.update(
                        int(row[0])
                        for row in self._conn.execute(
                            f"SELECT sequence FROM spool_batches WHERE sequence IN ({marks})",
                            chunk,
                        )
                    )
            except sqlite3.Error as exc:
                raise SpoolError(f"spool {self.path}: cannot read batches: {exc}") from exc
        return found

    # ---- housekeeping --------------------------------------------------------------------

    def stats(self) -> SpoolStats:
        with self._cond:
            return SpoolStats(
                bytes=self._bytes,
                batches=self._batches,
                limit_bytes=self.limit_bytes,
                paused=self._paused,
                full_waits=self._full_waits,
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The spool's connection inside BEGIN IMMEDIATE/COMMIT, for checkpoint reads/writes.

        Holds the connection for the duration: keep the work short.
        """
        self._check_open()
        with self._db, self._write() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path} busy or unwritable: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with suppress(sqlite3.Error):  # a failed COMMIT may already have rolled back
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise SpoolError(f"spool {self.path}: write failed: {exc}") from exc
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError(f"spool {self.path} is closed")

    def _checkpoint_loop(self) -> None:
        """Fold the WAL into the database file off the writers' path (PASSIVE: never blocks)."""
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        except sqlite3.Error as exc:  # pragma: no cover - the main connection opened fine
            log.warning("spool: no background checkpoints for %s: %s", self.path, exc)
            return
        try:
            while not self._closed:
                self._checkpoint_wanted.wait(CHECKPOINT_EVERY_S)
                self._checkpoint_wanted.clear()
                if self._closed:
                    break
                self._written_since_checkpoint = 0
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    log.warning("spool: WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            conn.close()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._checkpoint_wanted.set()
            self._cond.notify_all()
        self._checkpointer.join(10)
        with self._db:
            try:
                with suppress(sqlite3.Error):  # best effort: the WAL is replayed on open anyway
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                self._conn.close()
            except sqlite3.Error as exc:  # pragma: no cover - close rarely fails
                log.warning("spool: closing %s: %s", self.path, exc)


@dataclass(slots=True)
class _PutRequest:
    """One caller's put waiting to be group-committed."""

    source: SourceMeta
    batches: list[tuple[bytes, int, int]]
    """(encoded blob, record count, payload bytes) per batch."""
    checkpoint: CheckpointUpdate | None
    size: int
    done: bool = False
    sequences: list[int] = field(default_factory=list)
    error: BaseException | None = None


def _encode(lengths: Sequence[int], records: Sequence[bytes]) -> bytes:
    """One blob per batch: a format byte, the record count and every length (big-endian
    uint32), then the records back to back (a record may hold any bytes, newlines included).
    Built and split with C-level calls: this runs for every record the agent forwards."""
    count = len(records)
    return b"".join((_FORMAT, struct.pack(f">I{count}I", count, *lengths), *records))


def _decode(blob: bytes, path: Path, sequence: int) -> tuple[bytes, ...]:
    view = memoryview(blob)
    try:
        if view[:1] != _FORMAT:
            raise ValueError("unknown format byte")
        (count,) = struct.unpack_from(">I", view, 1)
        lengths = struct.unpack_from(f">{count}I", view, 5)
    except (ValueError, struct.error) as exc:
        raise SpoolError(f"spool {path}: batch {sequence} is corrupt ({exc})") from exc
    pos = 5 + 4 * count
    out: list[bytes] = []
    for length in lengths:
        out.append(bytes(view[pos : pos + length]))
        pos += length
    if pos != len(view):
        raise SpoolError(f"spool {path}: batch {sequence} is corrupt (length mismatch)")
    return tuple(out)
