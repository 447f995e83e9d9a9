"""An ``AlertFilter`` as a PostgreSQL ``WHERE`` on the alerts table (``store/sql_filters.py``
builds it; this is PostgreSQL's spelling).

The same columns and meaning as the SQLite backend: exact matches on indexed columns, groups and
MITRE IDs with ``strpos`` on their ``,a,b,`` text, and the text search as a case-insensitive
substring of the alert JSON (``ILIKE``, which the trigram index serves when the server has
``pg_trgm``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trailwarden.manager.store import sql_filters
from trailwarden.manager.store.base import AlertFilter
from trailwarden.manager.store.sql_filters import joined, time_column, to_ms

__all__ = ["joined", "time_column", "to_ms", "where"]


def _any_of(rule_ids: Sequence[str]) -> tuple[str, list[Any]]:
    return "rule_id = ANY(%s)", [list(rule_ids)]


POSTGRES = sql_filters.Dialect(
    mark="%s",
    contains="strpos({column}, %s) > 0",
    search="json ILIKE %s ESCAPE '\\'",
    any_of=_any_of,
)


def where(flt: AlertFilter, *, with_time: bool = True) -> tuple[list[str], list[Any]]:
    """``(clauses, params)`` of the filter; the clauses are ANDed by ``joined``."""
    return sql_filters.where(flt, POSTGRES, with_time=with_time)
