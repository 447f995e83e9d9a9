"""Counting the alerts a filter keeps, grouped by time bucket and/or field value: the one
engine under ``stats`` and ``series`` on SQLite.

Unfiltered questions on event time read the rollup counts for the whole hours and days of the
range and the alerts only for the minutes left at either end (``rollup.plan``); anything else
reads the alerts through the narrowest index the filter allows. Either way the result is the
same mapping, so the two paths are compared row for row by the tests.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from trailwarden.manager.store.base import AlertFilter, StatsField, TimeBasis
from trailwarden.manager.store.grouping import LABEL_COLUMNS, Grouped, expand
from trailwarden.manager.store.sqlite import rollup
from trailwarden.manager.store.sqlite.filters import joined, time_column, to_ms, where
from trailwarden.manager.store.sqlite.piece_cache import PieceCache, PieceValues

FAR_END_MS = 10**15 // rollup.DAY_MS * rollup.DAY_MS
"""Stands for "no end" (year ~33,000), a whole day, so an open range needs no raw tail."""

__all__ = ["FAR_END_MS", "Grouped", "expand", "grouped", "label"]


def grouped(
    conn: sqlite3.Connection,
    flt: AlertFilter,
    field: StatsField | None,
    bucket_ms: int | None,
    *,
    use_rollup: bool = True,
    cache: PieceCache | None = None,
) -> Grouped:
    """Alerts per (time bucket of ``bucket_ms``, value of ``field``); either may be None.
    MITRE and group values come back as their ``,a,b,`` text (see ``expand``).

    With ``cache``, every whole-hour piece of an event-time range is counted once and reused
    while its hours stay unchanged (``piece_cache.py``): the rollup rows of a stats question,
    and the alerts a filter keeps (whole days one by one, so a range that moves on by an hour
    still reuses them). The minutes at the edges are always read afresh."""
    source, derive = rollup.counted_as(field)
    column = rollup.FIELD_COLUMN[source] if source is not None else None
    out: defaultdict[tuple[int | None, Any], int] = defaultdict(int)
    counts = rollup.route(flt, field) if use_rollup else None
    edge = where(flt, with_time=False)
    if counts is None:
        if cache is None or not _scans_by_piece(flt):
            clauses, params = where(flt)
            time_col = time_column(flt.time_basis)
            _raw(conn, clauses, params, time_col, column, bucket_ms, out, derive)
            return dict(out)
        pieces = rollup.scan_pieces(_ms_of(flt.start), _ms_of(flt.end))
    else:
        lo = to_ms(flt.start) if flt.start is not None else 0
        hi = to_ms(flt.end) if flt.end is not None else FAR_END_MS
        # The minutes at the edges are read from the alerts, with the same filter.
        pieces = rollup.plan(lo, hi, rollup.spans_for(field, bucket_ms))
        if cache is None or bucket_ms is not None:
            cache = None  # series read few rollup rows: nothing worth keeping
        else:
            pieces = [part for piece in pieces for part in rollup.whole_hours(piece)]
    kept = [piece for piece in pieces if cache is not None and rollup.is_whole_hours(piece)]
    if cache is not None and kept:
        code = counts.code if counts is not None else None
        prefix = (code, field, bucket_ms, tuple(edge[0]), tuple(edge[1]))

        def one(piece: rollup.Piece) -> PieceValues:
            compute = functools.partial(
                _piece_values, conn, counts, piece, (column, derive), bucket_ms, edge
            )
            return cache.values(conn, (*prefix, piece), rollup.piece_ms(piece), compute)

        if len(kept) == 1:
            values = one(kept[0])
        else:
            # The kept pieces are contiguous (whole hours to whole hours): their sum is kept
            # too, so a repeated question adds no dictionaries up, only copies one.
            span = (rollup.piece_ms(kept[0])[0], rollup.piece_ms(kept[-1])[1])
            values = cache.values(
                conn, (*prefix, tuple(kept)), span, lambda: _summed([one(p) for p in kept])
            )
        out.update(values)  # into an empty mapping: copied in C
    for piece in pieces:
        if piece not in kept:
            _add_piece(conn, counts, piece, (column, derive), bucket_ms, edge, out)
    if 0 in out.values():
        return {key: n for key, n in out.items() if n}
    return dict(out)


def _summed(parts: list[PieceValues]) -> PieceValues:
    total = dict(parts[0])
    for part in parts[1:]:
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    return total


MAX_SCAN_PIECES_DAYS = 400
"""Filtered ranges longer than this are read in one scan, not kept day by day."""


def _scans_by_piece(flt: AlertFilter) -> bool:
    """True when a filtered scan may be read (and kept) piece by piece: event time (what the
    change counters follow) and a bounded range (a day's piece each)."""
    if flt.time_basis is not TimeBasis.EVENT or flt.start is None or flt.end is None:
        return False
    return flt.end - flt.start <= timedelta(days=MAX_SCAN_PIECES_DAYS)


def _ms_of(value: datetime | None) -> int:
    if value is None:
        raise ValueError("a piece-by-piece scan needs both ends of its range")
    return to_ms(value)


Column = tuple[str | None, Callable[[str], str] | None]
"""The alerts column counted (None: the total) and what derives the field from it, if any."""


def _add_piece(
    conn: sqlite3.Connection,
    counts: rollup.Route | None,
    piece: rollup.Piece,
    counted: Column,
    bucket_ms: int | None,
    edge: tuple[list[str], list[Any]],
    out: defaultdict[tuple[int | None, Any], int],
) -> None:
    """Add one piece into ``out``: a raw one read from the alerts with the filter's clauses
    (``edge``), a rollup one from its rows (for a pair, the kept filter values only)."""
    column, derive = counted
    if piece.span is None:
        clauses = ["event_time_ms >= ?", "event_time_ms < ?", *edge[0]]
        params = [piece.lo, piece.hi, *edge[1]]
        _raw(conn, clauses, params, "event_time_ms", column, bucket_ms, out, derive)
        return
    if counts is None:
        raise ValueError("a rollup piece needs the counts that answer it")
    size = rollup.SPANS[piece.span]
    keep = counts.keep
    for slot, value, n in rollup.read_counts(conn, counts.code, piece):
        if keep is not None:
            first, _, value = str(value).partition(rollup.SEPARATOR)
            if not keep(first):
                continue
        bucket = slot * size // bucket_ms if bucket_ms else None
        if derive is not None:
            value = derive(str(value))
        out[(bucket, value if column else None)] += n


def _piece_values(
    conn: sqlite3.Connection,
    counts: rollup.Route | None,
    piece: rollup.Piece,
    counted: Column,
    bucket_ms: int | None,
    edge: tuple[list[str], list[Any]],
) -> PieceValues:
    """One piece's counts per (bucket, value), from the rollup rows or the alerts."""
    out: defaultdict[tuple[int | None, Any], int] = defaultdict(int)
    _add_piece(conn, counts, piece, counted, bucket_ms, edge, out)
    return {key: n for key, n in out.items() if n}


def _raw(
    conn: sqlite3.Connection,
    clauses: list[str],
    params: list[Any],
    time_col: str,
    column: str | None,
    bucket_ms: int | None,
    out: defaultdict[tuple[int | None, Any], int],
    derive: Callable[[str], str] | None = None,
) -> None:
    """Count the alerts of the clauses per (bucket, value of ``column``, or ``derive`` of it)."""
    parts = []
    if bucket_ms:
        parts.append(f"{time_col} / {int(bucket_ms)}")
    if column:
        parts.append(column)
    if not parts:
        n = conn.execute(f"SELECT COUNT(*) FROM alerts{joined(clauses)}", params).fetchone()[0]
        out[(None, None)] += int(n)
        return
    group = ", ".join(str(i + 1) for i in range(len(parts)))
    sql = f"SELECT {', '.join(parts)}, COUNT(*) FROM alerts{joined(clauses)} GROUP BY {group}"
    for row in conn.execute(sql, params):
        bucket = int(row[0]) if bucket_ms else None
        # As text, as the rollup's TEXT column holds it (levels are integers in alerts).
        value = str(row[-2]) if column else None
        if derive is not None and value is not None:
            value = derive(value)
        out[(bucket, value)] += int(row[-1])


def label(conn: sqlite3.Connection, field: StatsField | None, key: str) -> str:
    """A readable name beside a key: the newest description of a rule, name of an agent."""
    if field not in LABEL_COLUMNS:
        return ""
    column, label_column = LABEL_COLUMNS[field]
    row = conn.execute(
        f"SELECT {label_column} FROM alerts WHERE {column} = ? ORDER BY event_time_ms DESC LIMIT 1",
        (key,),
    ).fetchone()
    return str(row[0] or "") if row else ""
