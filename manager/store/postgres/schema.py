"""The PostgreSQL schema of the store: versioned migrations and the optional text-search index.

Tables (migration 1):

- ``alerts``: the columns of the SQLite backend (``store/rows.py`` ``ALERT_COLUMNS``, the row
  an Alert becomes is shared: ``alert_row``), ``seq`` an identity column that is the follow
  cursor, times as Unix milliseconds. Unique ``(event_id, recipient_account, rule_id)`` for
  alerts of identified events, so a resend stores nothing twice even across managers.
- ``seen_events`` (dedupe keys), ``archive`` (raw events, when enabled), ``output_cursors``
  (each output's delivered-cursor).

Indexes follow the query paths: event time and arrival time alone, ``(column, event_time_ms)``
for every exact-match filter, and, when asked for, a trigram index on the alert JSON for the text
search (``ensure_text_search``, needs ``pg_trgm``; without it a search scans the rows the other
filters keep, as on SQLite). The trigram index is opt-in (``[store] text_index = true``): it
makes every insert about ten times dearer, see ``ensure_text_search``.
"""

from __future__ import annotations

import logging

from trailwarden.common.errors import StoreError
from trailwarden.manager.store.postgres.database import Connection, PgDatabase
from trailwarden.manager.store.sqlite.schema import INDEXED_BY_EVENT_TIME

log = logging.getLogger(__name__)

COMPONENT = "alerts"
"""The migration component name in ``schema_version``."""
TRIGRAM_INDEX = "alerts_json_trgm"

MIGRATIONS: tuple[str, ...] = (
    # 1: everything the alert store keeps.
    """
    CREATE TABLE alerts (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alert_id TEXT NOT NULL,
        ts_ms BIGINT NOT NULL,
        event_time_ms BIGINT NOT NULL,
        event_time TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        level INTEGER NOT NULL,
        description TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        event_source TEXT NOT NULL,
        event_name TEXT NOT NULL,
        principal TEXT NOT NULL,
        source_ip TEXT NOT NULL,
        event_id TEXT NOT NULL,
        recipient_account TEXT NOT NULL,
        json TEXT NOT NULL,
        source TEXT NOT NULL,
        bucket TEXT NOT NULL,
        error_code TEXT NOT NULL,
        groups TEXT NOT NULL,
        mitre TEXT NOT NULL
    );
    CREATE INDEX alerts_ts ON alerts (ts_ms);
    CREATE INDEX alerts_event_time ON alerts (event_time_ms);
    """
    + "".join(
        f"CREATE INDEX alerts_{col}_et ON alerts ({col}, event_time_ms);\n"
        for col in INDEXED_BY_EVENT_TIME
    )
    + """
    CREATE UNIQUE INDEX alerts_event_rule ON alerts (event_id, recipient_account, rule_id)
        WHERE event_id <> '';
    CREATE TABLE seen_events (
        event_key TEXT NOT NULL,
        recipient_account TEXT NOT NULL,
        seen_ms BIGINT NOT NULL,
        PRIMARY KEY (event_key, recipient_account)
    );
    CREATE INDEX seen_events_seen ON seen_events (seen_ms);
    CREATE TABLE archive (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        received_ms BIGINT NOT NULL,
        event_key TEXT NOT NULL,
        recipient_account TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        event_time_ms BIGINT,
        location TEXT NOT NULL,
        raw BYTEA NOT NULL
    );
    CREATE UNIQUE INDEX archive_event ON archive (event_key, recipient_account);
    CREATE INDEX archive_received ON archive (received_ms);
    CREATE TABLE output_cursors (
        name TEXT PRIMARY KEY,
        cursor BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    """,
)
"""Versioned schema of the ``alerts`` component. Append, never edit."""


def ensure_text_search(db: PgDatabase, wanted: bool | None) -> bool:
    """Make the trigram index for the text search exist when ``wanted`` (and ``pg_trgm`` can be
    enabled), and not exist when it is False (None leaves it as it is); True when it is there.

    It is off by default because it is expensive to keep: measured on this project's 2-core
    machine, a batch COPY into the alerts table went from ~8,700 to ~800 alerts/s with it
    (every alert's JSON is ~1.5 kB, about a thousand trigrams). Without it the search scans the
    rows the other filters keep, as the SQLite backend's ``LIKE`` does.
    """
    try:
        with db.transaction("text search index") as conn:
            present = _has_index(conn)
            if wanted is None:
                return present
            if not wanted:
                if present:
                    conn.execute(f"DROP INDEX {TRIGRAM_INDEX}")
                    log.warning(
                        "stage=store PostgreSQL %s: text_index is off; dropped %s",
                        db.safe_url,
                        TRIGRAM_INDEX,
                    )
                return False
            if present:
                return True
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON alerts "
                "USING gin (json gin_trgm_ops)"
            )
        return True
    except StoreError as exc:  # no extension, or no right to create it: searches scan
        log.warning(
            "stage=store PostgreSQL %s: [store] text_index is on but the trigram index could "
            "not be built (%s); searches scan the rows the other filters keep. Install the "
            "pg_trgm extension (postgresql-contrib) or let this user create it.",
            db.safe_url,
            exc,
        )
        return False


def _has_index(conn: Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TRIGRAM_INDEX,)).fetchone()
    return bool(row and row[0])
