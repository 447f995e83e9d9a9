"""An ``AlertFilter`` as a SQL ``WHERE`` on the alerts table, for either engine.

Both backends keep the same alerts columns and give each filter the same meaning: exact
matches on indexed columns, groups and MITRE IDs as one ``,a,b,`` element of their text, the
text search as a substring of the alert JSON with LIKE's wildcards taken literally. Only the
spelling differs (placeholders, a list of rule IDs, the substring function, LIKE or ILIKE);
a ``Dialect`` says it, and ``where`` builds the clauses once for both. Values are always
bound, never spliced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trailwarden.manager.store.base import AlertFilter, TimeBasis

EQUALS = (
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


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one engine spells the filters' SQL."""

    mark: str
    """The parameter placeholder (``?``, ``%s``)."""
    contains: str
    """``column`` holds the bound text: a template with ``{column}``."""
    search: str
    """The alert JSON matches the bound LIKE pattern (ESCAPE '\\')."""
    any_of: Callable[[Sequence[str]], tuple[str, list[Any]]]
    """``rule_id`` is one of the values: the clause and its parameters."""


def time_column(basis: TimeBasis) -> str:
    """``event_time_ms`` (eventTime, or arrival when it had none) or ``ts_ms`` (arrival)."""
    return "event_time_ms" if basis is TimeBasis.EVENT else "ts_ms"


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` taken literally (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where(
    flt: AlertFilter, dialect: Dialect, *, with_time: bool = True
) -> tuple[list[str], list[Any]]:
    """``(clauses, params)`` of the filter; the clauses are ANDed by ``joined``."""
    mark = dialect.mark
    clauses: list[str] = []
    params: list[Any] = []
    if with_time:
        column = time_column(flt.time_basis)
        if flt.start is not None:
            clauses.append(f"{column} >= {mark}")
            params.append(to_ms(flt.start))
        if flt.end is not None:
            clauses.append(f"{column} < {mark}")
            params.append(to_ms(flt.end))
    if flt.rule_ids:
        clause, values = dialect.any_of(flt.rule_ids)
        clauses.append(clause)
        params.extend(values)
    if flt.level is not None:
        clauses.append(f"level = {mark}")
        params.append(flt.level)
    if flt.min_level:
        clauses.append(f"level >= {mark}")
        params.append(flt.min_level)
    for attribute, column in EQUALS:
        value = getattr(flt, attribute)
        if value:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    for value, column in ((flt.group, "groups"), (flt.mitre, "mitre")):
        if value:
            clauses.append(dialect.contains.format(column=column))
            params.append(f",{value},")
    if flt.search:
        clauses.append(dialect.search)
        params.append(like_pattern(flt.search))
    return clauses, params


def joined(clauses: list[str]) -> str:
    """`` WHERE a AND b`` (or '' for no clause)."""
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
