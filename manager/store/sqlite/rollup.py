"""Rollup counts: per hour and per day of event time, per field and value, the alerts there are.

The console's overview asks a dozen "how many, by what" questions over a week or a month. Read
from the alerts, each would scan every alert in the range (a week of a 1M-alert store is
~230,000 rows, seconds per panel); read from ``alert_counts`` it sums at most a few thousand
rows. The counts are kept exact: ``commit`` adds the alerts it stored, in the same transaction;
retention subtracts the alerts it deletes, in the same transaction as the delete; the upgrade
of an older database adds the rows it fills in.

A range ``[start, end)`` is answered as whole days from the day rows, the whole hours left at
either side from the hour rows, and the minutes left over (less than an hour at each end) from
the alerts themselves (``plan``). Unfiltered questions on event time use the counts, and so do
the filtered ones the console asks on every overview (``PAIRS``: detections by level, IAM
events by eventSource); any other filter, or arrival time, reads the alerts through their
indexes instead (``route``).

Row key: ``(field, span, slot, value)``: field code (0 = every alert, value ''), span
(0 hour, 1 day), slot (Unix ms // span), value as stored in the alerts column (for MITRE and
groups the whole ``,a,b,`` text, split when read).

Besides the counts, one row per hour of event time (``CHANGES_CODE``, span 0, value '') counts
every alert ever added to or removed from that hour: it only grows, so two reads of it that
agree mean no alert of that hour changed in between. ``piece_cache.py`` keeps what a range's
rollup rows summed to and trusts it while those counters stay the same.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from trailwarden.manager.geo import country_of
from trailwarden.manager.store.base import AlertFilter, StatsField, TimeBasis

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SPANS = (HOUR_MS, DAY_MS)
"""Span codes 0 and 1."""

TOTAL_CODE = 0
CHANGES_CODE = 99
"""Field code of the per-hour change counters (alerts added + alerts removed, never less)."""
ROLLUP_COLUMNS = (
    "event_time_ms",
    "rule_id",
    "level",
    "account",
    "region",
    "event_source",
    "event_name",
    "principal",
    "source_ip",
    "source",
    "bucket",
    "error_code",
    "agent_id",
    "mitre",
    "groups",
)
"""The columns a rollup row is counted from, event time first; a field's code is its index."""
FIELD_COLUMN: dict[StatsField, str] = {
    StatsField.RULE: "rule_id",
    StatsField.LEVEL: "level",
    StatsField.ACCOUNT: "account",
    StatsField.REGION: "region",
    StatsField.EVENT_SOURCE: "event_source",
    StatsField.EVENT_NAME: "event_name",
    StatsField.USER: "principal",
    StatsField.SOURCE_IP: "source_ip",
    StatsField.SOURCE: "source",
    StatsField.BUCKET: "bucket",
    StatsField.ERROR_CODE: "error_code",
    StatsField.AGENT: "agent_id",
    StatsField.MITRE: "mitre",
    StatsField.GROUP: "groups",
}
"""The alerts column of every value field but the derived ones (``DERIVED``: ``country``)."""
FIELD_CODE: dict[StatsField, int] = {
    field: ROLLUP_COLUMNS.index(column) for field, column in FIELD_COLUMN.items()
}
DERIVED: dict[StatsField, tuple[StatsField, Callable[[str], str]]] = {
    StatsField.COUNTRY: (StatsField.SOURCE_IP, country_of)
}
"""Fields computed from another field's value when read: a country is its address's
(``geo.country_of``), counted from the address rows of the rollup or the address column of
the alerts. Nothing more is written at commit: the sum of a range's pieces by country (a few
hundred values) is what ``piece_cache`` keeps. Any backend can count them the same way:
count the source field, map each value (``counted_as``)."""


def counted_as(field: StatsField | None) -> tuple[StatsField | None, Callable[[str], str] | None]:
    """The field whose values are counted for ``field`` (itself unless derived), and what maps
    each counted value to one of ``field`` (None: none needed). For every backend's count."""
    if field is None:
        return None, None
    source, derive = DERIVED.get(field, (field, None))
    return source, derive


FIELD_CODE[StatsField.COUNTRY] = FIELD_CODE[StatsField.SOURCE_IP]
_CODES = range(1, len(ROLLUP_COLUMNS))
DAY_ONLY = (StatsField.USER, StatsField.SOURCE_IP, StatsField.COUNTRY)
"""Fields counted per day only: they have the most values (thousands of principals and
addresses an hour on a big estate), so hour rows would cost each commit as many writes as the
alerts themselves while saving a query little; the hours at a range's edges are read from the
alerts instead (through the ``(column, event_time_ms)`` index)."""
DAY_ONLY_CODES = frozenset(FIELD_CODE[field] for field in DAY_ONLY)
PAIRS: tuple[tuple[StatsField, StatsField], ...] = (
    (StatsField.LEVEL, StatsField.RULE),
    (StatsField.LEVEL, StatsField.MITRE),
    (StatsField.EVENT_SOURCE, StatsField.EVENT_NAME),
    (StatsField.EVENT_SOURCE, StatsField.RULE),
)
"""Value pairs counted too, so the console's filtered panels read counts as well: detections
(level >= N) by rule and by MITRE technique, IAM events (eventSource) by eventName and by rule.
A pair's value is ``<filter value>\x1f<value>``; both have few values, so few rows."""
PAIR_CODE = {pair: 100 + index for index, pair in enumerate(PAIRS)}
_PAIR_COLUMNS = [(PAIR_CODE[pair], FIELD_CODE[pair[0]], FIELD_CODE[pair[1]]) for pair in PAIRS]
SEPARATOR = "\x1f"

_UPSERT = (
    "INSERT INTO alert_counts (field, span, slot, value, n) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (field, span, slot, value) DO UPDATE SET n = n + excluded.n"
)
_DROP_EMPTY = (
    "DELETE FROM alert_counts WHERE field = ? AND span = ? AND slot = ? AND value = ? AND n <= 0"
)

Counts = dict[tuple[int, int, int, Any], int]


def count_rows(rows: Iterable[Sequence[Any]], sign: int = 1) -> Counts:
    """Rollup increments for rows of ``ROLLUP_COLUMNS`` (``sign`` -1 for deleted rows)."""
    by_hour: defaultdict[int, list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        by_hour[row[0] // HOUR_MS].append(row)
    out: Counts = {}
    days: defaultdict[tuple[int, int, int, Any], int] = defaultdict(int)
    # A batch spans an hour or two of event time: count each column of each hour at once
    # (Counter runs in C), then add each hour into its day.
    for hour, hour_rows in by_hour.items():
        day = hour * HOUR_MS // DAY_MS
        columns = list(zip(*hour_rows, strict=True))
        n_rows = len(hour_rows) * sign
        out[(TOTAL_CODE, 0, hour, "")] = n_rows
        out[(CHANGES_CODE, 0, hour, "")] = len(hour_rows)
        days[(TOTAL_CODE, 1, day, "")] += n_rows
        for code in _CODES:
            hourly = code not in DAY_ONLY_CODES
            for value, n in Counter(columns[code]).items():
                if hourly:
                    out[(code, 0, hour, value)] = n * sign
                days[(code, 1, day, value)] += n * sign
        for code, first, second in _PAIR_COLUMNS:
            for (a, b), n in Counter(zip(columns[first], columns[second], strict=True)).items():
                value = f"{a}{SEPARATOR}{b}"
                out[(code, 0, hour, value)] = n * sign
                days[(code, 1, day, value)] += n * sign
    out.update(days)
    return out


def add_counts(tx: sqlite3.Connection, counts: Counts) -> None:
    """Apply increments inside the caller's transaction; rows that reach 0 are removed."""
    # In key order, so one batch fills each B-tree page once. Values as the TEXT column holds
    # them (a level is counted as an int), so the rows sort as plain tuples, in C.
    changes = sorted(
        (f, span, slot, str(value), n) for (f, span, slot, value), n in counts.items() if n
    )
    if not changes:
        return
    tx.executemany(_UPSERT, changes)
    negative = [change[:4] for change in changes if change[4] < 0]
    if negative:
        tx.executemany(_DROP_EMPTY, negative)


def spans_for(field: StatsField | None, bucket_ms: int | None) -> list[int]:
    """Span codes (coarsest first) that can answer for ``field`` in buckets of ``bucket_ms``."""
    spans = [1] if field in DAY_ONLY else [1, 0]
    return [s for s in spans if bucket_ms is None or bucket_ms % SPANS[s] == 0]


@dataclass(frozen=True, slots=True)
class Route:
    """How the counts answer a question: which field code to read and, for a pair, which
    filter values to keep (the value read is then the pair's second half)."""

    code: int
    keep: Callable[[str], bool] | None = None


def route(flt: AlertFilter, field: StatsField | None) -> Route | None:
    """The counts that answer ``field`` (None: the total) under ``flt``, or None when only
    the alerts can (any other filter, arrival time)."""
    if flt.time_basis is not TimeBasis.EVENT:
        return None
    active = flt.active()
    if not active:
        return Route(FIELD_CODE[field] if field is not None else TOTAL_CODE)
    if active <= {"level", "min_level"}:
        pair = (StatsField.LEVEL, field if field is not None else StatsField.RULE)
        level, least = flt.level, flt.min_level

        def keep_level(text: str) -> bool:
            value = int(text)
            return value >= least and (level is None or value == level)

        return Route(PAIR_CODE[pair], keep_level) if pair in PAIR_CODE else None
    if active == {"event_source"}:
        pair = (StatsField.EVENT_SOURCE, field if field is not None else StatsField.RULE)
        wanted = flt.event_source
        return Route(PAIR_CODE[pair], wanted.__eq__) if pair in PAIR_CODE else None
    return None


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a range: ``span`` index into SPANS with slots ``[lo, hi)``, or ``span`` None
    for raw milliseconds ``[lo, hi)`` read from the alerts."""

    span: int | None
    lo: int
    hi: int


def plan(lo_ms: int, hi_ms: int, spans: Sequence[int] = (1, 0)) -> list[Piece]:
    """Cover ``[lo_ms, hi_ms)`` with whole days, then whole hours, then raw milliseconds
    (``spans``: the span codes allowed, coarsest first)."""
    if lo_ms >= hi_ms:
        return []
    if not spans:
        return [Piece(None, lo_ms, hi_ms)]
    size = SPANS[spans[0]]
    first = -(-lo_ms // size)  # ceil
    last = hi_ms // size
    if first >= last:
        return plan(lo_ms, hi_ms, spans[1:])
    return [
        *plan(lo_ms, first * size, spans[1:]),
        Piece(spans[0], first, last),
        *plan(last * size, hi_ms, spans[1:]),
    ]


def read_counts(conn: sqlite3.Connection, code: int, piece: Piece) -> list[tuple[int, Any, int]]:
    """``(slot, value, n)`` rows of one rollup piece."""
    return conn.execute(
        "SELECT slot, value, n FROM alert_counts "
        "WHERE field = ? AND span = ? AND slot >= ? AND slot < ?",
        (code, piece.span, piece.lo, piece.hi),
    ).fetchall()


def changes(conn: sqlite3.Connection, lo_ms: int, hi_ms: int) -> tuple[tuple[int, int], ...]:
    """The change counters ``(hour, n)`` of every hour that ``[lo_ms, hi_ms)`` touches: equal
    on two reads only if no alert of those hours was added or removed in between."""
    return tuple(
        conn.execute(
            "SELECT slot, n FROM alert_counts "
            "WHERE field = ? AND span = 0 AND slot >= ? AND slot < ?",
            (CHANGES_CODE, lo_ms // HOUR_MS, -(-hi_ms // HOUR_MS)),
        ).fetchall()
    )


def whole_hours(piece: Piece) -> list[Piece]:
    """A raw piece split into the minutes before its first whole hour, its whole hours (still
    raw, but cacheable: the change counters cover them) and the minutes after."""
    if piece.span is not None:
        return [piece]
    first = -(-piece.lo // HOUR_MS) * HOUR_MS
    last = piece.hi // HOUR_MS * HOUR_MS
    if first >= last:
        return [piece]
    parts = [Piece(None, piece.lo, first), Piece(None, first, last), Piece(None, last, piece.hi)]
    return [part for part in parts if part.lo < part.hi]


def piece_ms(piece: Piece) -> tuple[int, int]:
    """The milliseconds ``[lo, hi)`` a piece covers."""
    if piece.span is None:
        return piece.lo, piece.hi
    size = SPANS[piece.span]
    return piece.lo * size, piece.hi * size


def is_whole_hours(piece: Piece) -> bool:
    """True when the piece starts and ends on the hour (what the change counters can vouch for)."""
    lo, hi = piece_ms(piece)
    return lo % HOUR_MS == 0 and hi % HOUR_MS == 0


def scan_pieces(lo_ms: int, hi_ms: int) -> list[Piece]:
    """``[lo_ms, hi_ms)`` as raw pieces for a filtered scan: the minutes before the first whole
    hour, the whole hours before the first midnight, each whole day on its own, the whole hours
    after the last midnight, the minutes after the last whole hour."""
    out: list[Piece] = []
    for piece in plan(lo_ms, hi_ms):
        if piece.span == 1:
            out.extend(
                Piece(None, day * DAY_MS, (day + 1) * DAY_MS) for day in range(piece.lo, piece.hi)
            )
        else:
            out.append(Piece(None, *piece_ms(piece)))
    return out
