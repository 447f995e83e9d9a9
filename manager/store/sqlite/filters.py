"""An ``AlertFilter`` as a SQLite ``WHERE`` on the alerts table (``store/sql_filters.py`` builds
it; this is SQLite's spelling).

Every equality filter has an index ``(column, event_time_ms)``, so SQLite reads the narrowest
one's range; groups and MITRE IDs are matched with ``instr`` on their ``,a,b,`` text, the text
search with ``LIKE`` on the JSON, both on the rows the indexed filters keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trailwarden.manager.store import sql_filters
from trailwarden.manager.store.base import AlertFilter
from trailwarden.manager.store.sql_filters import joined, time_column, to_ms

__all__ = ["joined", "time_column", "to_ms", "where"]


def _in_list(rule_ids: Sequence[str]) -> tuple[str, list[Any]]:
    return f"rule_id IN ({','.join('?' * len(rule_ids))})", list(rule_ids)


SQLITE = sql_filters.Dialect(
    mark="?",
    contains="instr({column}, ?) > 0",
    search="json LIKE ? ESCAPE '\\'",
    any_of=_in_list,
)


def where(flt: AlertFilter, *, with_time: bool = True) -> tuple[list[str], list[Any]]:
    """``(clauses, params)`` of the filter; the clauses are ANDed by ``joined``."""
    return sql_filters.where(flt, SQLITE, with_time=with_time)
