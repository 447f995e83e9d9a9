"""The alert tables' schema, the row an Alert becomes, and the upgrade of older databases.

Tables (component ``alerts`` in the manager database):

- ``alerts``: one row per alert; the columns every filter and stats field reads, each indexed
  together with the event time (``<column>, event_time_ms``) so "rule X last week" or "user Y
  yesterday" reads a narrow index range already in time order, plus the full alert JSON
  (Wazuh's alerts.json shape). ``event_time_ms`` is CloudTrail's eventTime in Unix ms, or the
  arrival time (``ts_ms``) when the record had no readable eventTime, so every alert has a
  place on the event-time axis. Rule groups and MITRE IDs are kept as ``,a,b,`` text so a
  filter is one ``instr`` and no JSON is parsed. A unique index on (event ID, recipient
  account, rule) makes a second alert for the same event and rule impossible.
- ``alert_counts``: per hour and per day of event time, per field and value, how many alerts
  there are (see ``rollup.py``), maintained in the same transaction as the alerts.
- ``seen_events`` (dedupe keys) and ``archive`` (raw events, when enabled).

Version 2 added the columns for aws.source, bucket, error code, groups and MITRE, moved the
per-field indexes from arrival time to event time and added ``alert_counts``. Its SQL only
adds; the rows of an older database are filled in by ``finish_upgrade`` in batches from the
stored JSON (one short transaction each, resumable after a crash), then the indexes are built.
"""

from __future__ import annotations

import logging
import sqlite3

from trailwarden.manager.store.rows import ALERT_COLUMNS
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.store.sqlite.rollup import ROLLUP_COLUMNS, add_counts, count_rows

log = logging.getLogger(__name__)

COMPONENT = "alerts"
"""The migration component name in ``schema_migrations``."""

_V1_INDEXED_BY_ARRIVAL = (
    "rule_id",
    "level",
    "agent_id",
    "account",
    "region",
    "event_source",
    "event_name",
    "principal",
    "source_ip",
)
INDEXED_BY_EVENT_TIME = (*_V1_INDEXED_BY_ARRIVAL, "bucket", "error_code")
"""Columns with an index ``(column, event_time_ms)`` (aws.source has a handful of values, so
an index would not narrow anything; groups and MITRE are matched inside the text)."""

MIGRATIONS: tuple[str, ...] = (
    # 1: alerts, dedupe keys, raw archive.
    """
    CREATE TABLE alerts (
        seq INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        event_time_ms INTEGER,
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
        json TEXT NOT NULL
    );
    CREATE INDEX alerts_ts ON alerts (ts_ms);
    CREATE INDEX alerts_event_time ON alerts (event_time_ms);
    """
    + "".join(
        f"CREATE INDEX alerts_{col}_ts ON alerts ({col}, ts_ms);\n"
        for col in _V1_INDEXED_BY_ARRIVAL
    )
    + """
    CREATE UNIQUE INDEX alerts_event_rule ON alerts (event_id, recipient_account, rule_id)
        WHERE event_id <> '';
    CREATE TABLE seen_events (
        event_key TEXT NOT NULL,
        recipient_account TEXT NOT NULL,
        seen_ms INTEGER NOT NULL,
        PRIMARY KEY (event_key, recipient_account)
    ) WITHOUT ROWID;
    CREATE INDEX seen_events_seen ON seen_events (seen_ms);
    CREATE TABLE archive (
        seq INTEGER PRIMARY KEY,
        received_ms INTEGER NOT NULL,
        event_key TEXT NOT NULL,
        recipient_account TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        event_time_ms INTEGER,
        location TEXT NOT NULL,
        raw BLOB NOT NULL
    );
    CREATE UNIQUE INDEX archive_event ON archive (event_key, recipient_account);
    CREATE INDEX archive_received ON archive (received_ms);
    """,
    # 2: event time for every alert, the columns of the new filters, per-field indexes by event
    # time (built by finish_upgrade after the rows are filled in), rollup counts.
    "".join(f"DROP INDEX alerts_{col}_ts;\n" for col in _V1_INDEXED_BY_ARRIVAL)
    + """
    ALTER TABLE alerts ADD COLUMN source TEXT NOT NULL DEFAULT '';
    ALTER TABLE alerts ADD COLUMN bucket TEXT NOT NULL DEFAULT '';
    ALTER TABLE alerts ADD COLUMN error_code TEXT NOT NULL DEFAULT '';
    ALTER TABLE alerts ADD COLUMN groups TEXT NOT NULL DEFAULT '';
    ALTER TABLE alerts ADD COLUMN mitre TEXT NOT NULL DEFAULT '';
    CREATE TABLE alert_counts (
        field INTEGER NOT NULL,
        span INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        value TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (field, span, slot, value)
    ) WITHOUT ROWID;
    CREATE TABLE alerts_upgrade (done INTEGER NOT NULL, upto INTEGER NOT NULL);
    INSERT INTO alerts_upgrade SELECT 0, COALESCE(MAX(seq), 0) FROM alerts;
    """,
)
"""Versioned schema of the ``alerts`` component. Append, never edit."""

FINAL_INDEXES = tuple(
    f"CREATE INDEX IF NOT EXISTS alerts_{col}_et ON alerts ({col}, event_time_ms)"
    for col in INDEXED_BY_EVENT_TIME
)
"""What ``finish_upgrade`` builds once the rows of an older version are filled in."""

INSERT_ALERT_SQL = f"INSERT OR IGNORE INTO alerts ({ALERT_COLUMNS}) VALUES ({', '.join('?' * 23)})"
ROW_ROLLUP_INDEXES = (2, 4, 5, 9, 10, 11, 12, 13, 14, 18, 19, 20, 7, 22, 21)
"""Positions in an ``alert_row`` of the ``rollup.ROLLUP_COLUMNS`` (event time first)."""
UPGRADE_BATCH = 20_000
"""Rows filled in per upgrade transaction: short write locks, steady progress."""


# ---- upgrade of older databases ---------------------------------------------------------------

_FILL_SQL = """
UPDATE alerts SET
    event_time_ms = COALESCE(event_time_ms, ts_ms),
    source = CASE json_type(json, '$.data.aws.source')
        WHEN 'text' THEN json_extract(json, '$.data.aws.source') ELSE '' END,
    bucket = CASE json_type(json, '$.data.aws.log_info.s3bucket')
        WHEN 'text' THEN json_extract(json, '$.data.aws.log_info.s3bucket') ELSE '' END,
    error_code = CASE json_type(json, '$.data.aws.errorCode')
        WHEN 'text' THEN json_extract(json, '$.data.aws.errorCode') ELSE '' END,
    groups = COALESCE((SELECT ',' || group_concat(value, ',') || ','
        FROM json_each(alerts.json, '$.rule.groups')), ''),
    mitre = COALESCE((SELECT ',' || group_concat(value, ',') || ','
        FROM json_each(alerts.json, '$.rule.mitre.id')), '')
WHERE seq > ? AND seq <= ? AND json_valid(json)
"""


def finish_upgrade(db: Database) -> int:
    """Fill in the version-2 columns and rollup counts of rows an older version stored, then
    build the event-time indexes. Returns the rows filled in (0 on a current database)."""
    conn = db.connection()
    state = conn.execute("SELECT done, upto FROM alerts_upgrade").fetchone()
    if state is None:
        return 0
    done, upto = int(state[0]), int(state[1])
    filled = 0
    if done < upto:
        log.warning(
            "stage=store upgrading %s: filling in event time, bucket, error code, groups and "
            "MITRE for alerts %d..%d from their JSON",
            db.path,
            done + 1,
            upto,
        )
    while done < upto:
        stop = min(upto, done + UPGRADE_BATCH)
        with db.transaction() as tx:
            tx.execute(_FILL_SQL, (done, stop))
            rows = tx.execute(
                f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM alerts WHERE seq > ? AND seq <= ?",
                (done, stop),
            ).fetchall()
            add_counts(tx, count_rows(rows))
            tx.execute("UPDATE alerts_upgrade SET done = ?", (stop,))
        filled += len(rows)
        done = stop
    with db.transaction() as tx:
        for statement in FINAL_INDEXES:
            tx.execute(statement)
        tx.execute("DELETE FROM alerts_upgrade")
    if filled:
        log.warning(
            "stage=store upgraded %s: %d alert(s) filled in, indexes built", db.path, filled
        )
    return filled


def create_current_schema(conn: sqlite3.Connection) -> None:
    """Every table and index of the current version on a bare connection (for benchmarks that
    compare against bare SQL on the same shape)."""
    from trailwarden.manager.store.sqlite.database import _split_sql

    for script in MIGRATIONS:
        for statement in _split_sql(script):
            conn.execute(statement)
    for statement in FINAL_INDEXES:
        conn.execute(statement)
    conn.execute("DELETE FROM alerts_upgrade")
