"""Counting the alerts a filter keeps per time bucket and/or field value, on PostgreSQL: the
``count`` and ``label`` that ``store/grouping.py`` builds stats and series from.

One ``GROUP BY`` over the rows the filter keeps, through the narrowest index it allows (there
are no rollup counts on this backend yet: see docs/PERFORMANCE.md for what that costs).
"""

from __future__ import annotations

from trailwarden.manager.store.base import AlertFilter, StatsField
from trailwarden.manager.store.grouping import LABEL_COLUMNS, Grouped
from trailwarden.manager.store.postgres.database import Connection
from trailwarden.manager.store.postgres.filters import joined, time_column, where
from trailwarden.manager.store.sqlite.rollup import FIELD_COLUMN, counted_as


def count(
    conn: Connection, flt: AlertFilter, field: StatsField | None, bucket_ms: int | None
) -> Grouped:
    """Alerts per (time bucket of ``bucket_ms``, value of ``field``); either may be None.

    A derived field (``rollup.counted_as``: ``country``) is counted by the field it comes
    from (``source_ip``) and each value mapped (``geo.country_of``), as SQLite does: several
    addresses of one country add up under it."""
    source, derive = counted_as(field)
    clauses, params = where(flt)
    parts = []
    if bucket_ms:
        # Floor division as SQLite's integer division does for the (positive) times stored.
        parts.append(f"{time_column(flt.time_basis)} / {int(bucket_ms)}")
    if source is not None:
        parts.append(FIELD_COLUMN[source])
    if not parts:
        row = conn.execute(f"SELECT COUNT(*) FROM alerts{joined(clauses)}", params).fetchone()
        return {(None, None): int(row[0])} if row and row[0] else {}
    group = ", ".join(str(i + 1) for i in range(len(parts)))
    sql = f"SELECT {', '.join(parts)}, COUNT(*) FROM alerts{joined(clauses)} GROUP BY {group}"
    out: Grouped = {}
    for row in conn.execute(sql, params):
        bucket = int(row[0]) if bucket_ms else None
        value = str(row[-2]) if source is not None else None
        if derive is not None and value is not None:
            value = derive(value)
        out[(bucket, value)] = out.get((bucket, value), 0) + int(row[-1])
    return out


def label(conn: Connection, field: StatsField, key: str) -> str:
    """A readable name beside a key: the newest description of a rule, name of an agent."""
    if field not in LABEL_COLUMNS:
        return ""
    column, label_column = LABEL_COLUMNS[field]
    row = conn.execute(
        f"SELECT {label_column} FROM alerts WHERE {column} = %s "
        "ORDER BY event_time_ms DESC LIMIT 1",
        (key,),
    ).fetchone()
    return str(row[0] or "") if row else ""
