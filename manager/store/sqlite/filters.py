"""An ``AlertFilter`` as a SQL ``WHERE`` on the alerts table (values always bound, never
spliced), and the time column its basis names.

Every equality filter has an index ``(column, event_time_ms)``, so SQLite reads the narrowest
one's range; groups and MITRE IDs are matched with ``instr`` on their ``,a,b,`` text, the text
search with ``LIKE`` on the JSON, both on the rows the indexed filters keep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trailwarden.manager.store.base import AlertFilter, TimeBasis

_EQUALS = (
    ("agent_id", "agent_id"),
    ("account", "account"),
    ("region", "region"),
    ("user", "principal"),
    ("event_name", "event_name"),
    ("event_source", "event_source"),
    ("source", "source"),
    ("bucket", "bucket"),
    ("error_code", "error_code"),
    ("source_ip", "source_ip"),
)
"""AlertFilter attribute → alerts column, for the exact-match filters."""


def time_column(basis: TimeBasis) -> str:
    """``event_time_ms`` (eventTime, or arrival when it had none) or ``ts_ms`` (arrival)."""
    return "event_time_ms" if basis is TimeBasis.EVENT else "ts_ms"


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def where(flt: AlertFilter, *, with_time: bool = True) -> tuple[list[str], list[Any]]:
    """``(clauses, params)`` of the filter; the clauses are ANDed by ``joined``."""
    clauses: list[str] = []
    params: list[Any] = []
    if with_time:
        column = time_column(flt.time_basis)
        if flt.start is not None:
            clauses.append(f"{column} >= ?")
            params.append(to_ms(flt.start))
        if flt.end is not None:
            clauses.append(f"{column} < ?")
            params.append(to_ms(flt.end))
    if flt.rule_ids:
        clauses.append(f"rule_id IN ({','.join('?' * len(flt.rule_ids))})")
        params.extend(flt.rule_ids)
    if flt.level is not None:
        clauses.append("level = ?")
        params.append(flt.level)
    if flt.min_level:
        clauses.append("level >= ?")
        params.append(flt.min_level)
    for attribute, column in _EQUALS:
        value = getattr(flt, attribute)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    for value, column in ((flt.group, "groups"), (flt.mitre, "mitre")):
        if value:
            clauses.append(f"instr({column}, ?) > 0")
            params.append(f",{value},")
    if flt.search:
        escaped = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("json LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    return clauses, params


def joined(clauses: list[str]) -> str:
    """`` WHERE a AND b`` (or '' for no clause)."""
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
