"""What a whole-hour piece of a range counted, per value, kept while its hours stay unchanged.

"Top source IPs" over a week reads ~26,000 day rows of the rollup per day (every address seen
that day) and adds them up: ~180,000 rows for 65,536 addresses, 0.5-1 s per request on a 1M
store, on every refresh of the overview. Those rows only change when an alert of those hours is
added or removed, which ``rollup.CHANGES_CODE`` counts per hour. So a piece's sum is kept here
with the change counters it was read under, and handed out again while a fresh read of the
counters (one indexed range of at most a row per hour) gives the same tuple: exact, because any
commit or deletion in those hours moves a counter, whichever process made it.

Bounded by the values held (``MAX_VALUES``), least recently used dropped first.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from trailwarden.manager.store.sqlite import rollup

MAX_VALUES = 400_000
"""Values held over every kept piece: ~64 MB at most (measured ~160 bytes a value: the key
tuple, the address text, the dictionary slot); a bigger piece is not kept. A week of 65,536
addresses is one piece of 65,536 values (and, filtered, one piece a day plus their sum)."""

PieceValues = dict[tuple[int | None, Any], int]
"""A piece's counts, keyed as ``aggregate.Grouped`` keys them: ``(None, field value or None
for the total)`` → alerts, so a cached piece merges into a result without re-keying."""


class PieceCache:
    """Thread-safe; shared by every thread of one store."""

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        if max_values < 0:
            raise ValueError(f"max_values must be >= 0 (0 keeps nothing), not {max_values}")
        self._max_values = max_values
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[tuple[tuple[int, int], ...], PieceValues]] = (
            OrderedDict()
        )
        self._held = 0
        self.hits = 0
        self.misses = 0

    @property
    def held(self) -> int:
        """Values held now, over every kept piece."""
        with self._lock:
            return self._held

    def values(
        self,
        conn: sqlite3.Connection,
        key: Hashable,
        span_ms: tuple[int, int],
        compute: Callable[[], PieceValues],
    ) -> PieceValues:
        """The counts of ``key`` over ``span_ms`` (whole hours): kept ones if the hours'
        change counters are as they were, else ``compute()``'s (kept for next time).
        The result is shared: callers must not change it."""
        stamp = rollup.changes(conn, *span_ms)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == stamp:
                self._kept.move_to_end(key)
                self.hits += 1
                return kept[1]
        values = compute()
        # Read the counters again: a commit between the first read and compute() would
        # otherwise be kept under the older stamp; an unchanged stamp proves nothing moved.
        if rollup.changes(conn, *span_ms) != stamp:
            return values
        with self._lock:
            self.misses += 1
            old = self._kept.pop(key, None)
            if old is not None:
                self._held -= len(old[1])
            if len(values) <= self._max_values:
                self._kept[key] = (stamp, values)
                self._held += len(values)
            while self._held > self._max_values and self._kept:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._held -= len(dropped)
        return values
