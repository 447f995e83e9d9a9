"""An ``AlertFilter`` as a PostgreSQL ``WHERE`` on the alerts table (values always bound, never
spliced), and the time column its basis names.

The same columns and meaning as the SQLite backend's ``sqlite/filters.py``: exact matches on
indexed columns, groups and MITRE IDs as one ``,a,b,`` element of their text, and the text
search as a case-insensitive substring of the alert JSON (``ILIKE``, which the trigram index
serves when the server has ``pg_trgm``).
"""

from __future__ import annotations

from typing import Any

from trailwarden.manager.store.base import AlertFilter

# The alerts table has the same columns on both engines; their names live with SQLite's.
from trailwarden.manager.store.sqlite.filters import _EQUALS as EQUALS
from trailwarden.manager.store.sqlite.filters import joined, time_column, to_ms

__all__ = ["joined", "like_pattern", "time_column", "to_ms", "where"]


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where(flt: AlertFilter, *, with_time: bool = True) -> tuple[list[str], list[Any]]:
    """``(clauses, params)`` of the filter; the clauses are ANDed by ``joined``."""
    clauses: list[str] = []
    params: list[Any] = []
    if with_time:
        column = time_column(flt.time_basis)
        if flt.start is not None:
            clauses.append(f"{column} >= %s")
            params.append(to_ms(flt.start))
        if flt.end is not None:
            clauses.append(f"{column} < %s")
            params.append(to_ms(flt.end))
    if flt.rule_ids:
        clauses.append("rule_id = ANY(%s)")
        params.append(list(flt.rule_ids))
    if flt.level is not None:
        clauses.append("level = %s")
        params.append(flt.level)
    if flt.min_level:
        clauses.append("level >= %s")
        params.append(flt.min_level)
    for attribute, column in EQUALS:
        value = getattr(flt, attribute)
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    for value, column in ((flt.group, "groups"), (flt.mitre, "mitre")):
        if value:
            clauses.append(f"strpos({column}, %s) > 0")
            params.append(f",{value},")
    if flt.search:
        clauses.append("json ILIKE %s ESCAPE '\\'")
        params.append(like_pattern(flt.search))
    return clauses, params
