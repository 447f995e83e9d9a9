"""The PostgreSQL alert store: the ``AlertStore`` protocol on a pooled PostgreSQL database.

Behaves as the SQLite backend does (the contract tests run both): the same dedupe keys, one
transaction per committed batch, the same filters, paging tokens, follow cursors, stats and
series. What differs is how:

- Bulk writes: COPY into a temporary table per table, then one ``INSERT ... SELECT ... ON
  CONFLICT DO NOTHING`` (``Staged``; COPY alone cannot skip duplicates).
- Follow cursor: ``seq`` values are assigned before commit, so two writers could commit out of
  order and a follower reading up to the highest visible ``seq`` would skip the slower one's
  alerts for good. Every commit that stores alerts takes one transaction-level advisory lock
  first, so ``seq`` order is commit order, also between several managers on one database.
- Size cap: PostgreSQL frees space only to its own reuse (VACUUM), so the cap is measured on
  live row bytes (``pg_column_size`` of the rows kept), not on file size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from trailwarden.common.errors import StoreError
from trailwarden.common.timeparse import utc_now
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.base import (
    AlertFilter,
    AlertPage,
    AlertQuery,
    AlertStore,
    ArchivedEvent,
    EventRow,
    PruneResult,
    SeriesQuery,
    SeriesResult,
    StatsField,
    StatsQuery,
    StatsResult,
    StoredAlert,
)
from trailwarden.manager.store.grouping import Grouped, series_result, stats_result
from trailwarden.manager.store.postgres import aggregate, filters
from trailwarden.manager.store.postgres.database import Connection, PgDatabase
from trailwarden.manager.store.postgres.schema import COMPONENT, MIGRATIONS, ensure_text_search
from trailwarden.manager.store.query import decode_page_token, encode_page_token
from trailwarden.manager.store.retention import RetentionPolicy, enforce_size_cap
from trailwarden.manager.store.rows import (
    ALERT_COLUMNS,
    alert_row,
    archived_event,
    stored_alert,
    time_ms,
)

log = logging.getLogger(__name__)

FOLLOW_LOCK = 0x74770002
"""Advisory lock key every commit that stores alerts or archived events holds: makes ``seq``
order commit order (for ``follow`` and for a follower of the archive)."""
DELETE_CHUNK = 20_000
"""Rows per retention transaction: short transactions so ingest commits are not held up."""
STORE_TABLES = ("alerts", "archive", "seen_events")
SIZE_SAMPLE_ROWS = 50_000
"""Above this many rows a table's row size is estimated from a sample of its pages."""

SEEN_COLUMNS = "event_key, recipient_account, seen_ms"
ARCHIVE_COLUMNS = (
    "received_ms, event_key, recipient_account, agent_id, event_time_ms, location, raw"
)


@dataclass(frozen=True)
class Staged:
    """How one table's batch goes in: COPY into a temporary table shaped like it, then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (COPY alone cannot skip duplicates).
    Measured on 10,000 alerts: ~3,100/s as one multi-row INSERT from unnest() arrays (the
    server parses every JSON document inside an array literal), ~25,000/s staged this way."""

    table: str
    columns: str

    @property
    def stage(self) -> str:
        return f"{self.table}_in"

    @property
    def create_sql(self) -> str:
        # Per connection, emptied by every commit; pooled connections keep it between batches.
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {self.columns} FROM {self.table} WITH NO DATA"
        )

    @property
    def copy_sql(self) -> str:
        return f"COPY {self.stage} ({self.columns}) FROM STDIN"

    @property
    def insert_sql(self) -> str:
        return (
            f"INSERT INTO {self.table} ({self.columns}) SELECT {self.columns} FROM {self.stage} "
            "ON CONFLICT DO NOTHING"
        )


ALERTS_IN = Staged("alerts", ALERT_COLUMNS)
SEEN_IN = Staged("seen_events", SEEN_COLUMNS)
ARCHIVE_IN = Staged("archive", ARCHIVE_COLUMNS)


def copy_rows(conn: Connection, staged: Staged, rows: Iterable[Sequence[Any]]) -> None:
    """COPY ``rows`` into ``staged``'s temporary table (created on first use)."""
    conn.execute(staged.create_sql)
    with conn.cursor() as cursor, cursor.copy(staged.copy_sql) as copy:
        for row in rows:
            copy.write_row(row)


_SELECT_ALERT = f"SELECT seq, {ALERT_COLUMNS} FROM alerts"


class PostgresAlertStore:
    """``AlertStore`` on PostgreSQL. Thread-safe: every call borrows a pooled connection.

    The store owns its ``PgDatabase`` when it opened it from a URL (``from_url``); ``close()``
    then closes the pool.
    """

    def __init__(
        self,
        database: PgDatabase,
        *,
        archive: bool = False,
        retention: RetentionPolicy | None = None,
        owns_database: bool = False,
        text_index: bool | None = False,
        migrate: bool = True,
    ) -> None:
        """``text_index``: keep a trigram index for the text search (``[store] text_index``;
        ~10x dearer inserts, see ``schema.ensure_text_search``); None leaves it as it is.
        ``migrate=False`` touches no schema (an analysis worker, after the manager migrated)."""
        self._db = database
        self._owns = owns_database
        self.archive = archive
        self.retention = retention or RetentionPolicy()
        self._closed = False
        self.text_index = False
        """True when the text search has its trigram index (pg_trgm)."""
        if not migrate:
            return
        version = database.migrate(COMPONENT, MIGRATIONS)
        self.text_index = ensure_text_search(database, text_index)
        log.info(
            "stage=store alerts schema v%d on PostgreSQL %s (archive %s, text index %s)",
            version,
            database.safe_url,
            "on" if archive else "off",
            "on" if self.text_index else "off",
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        archive: bool = False,
        retention: RetentionPolicy | None = None,
        pool_max: int | None = None,
        text_index: bool | None = False,
        migrate: bool = True,
    ) -> PostgresAlertStore:
        """Open a pool on ``url`` and the store on it (StoreError if unreachable)."""
        database = PgDatabase(url) if pool_max is None else PgDatabase(url, max_size=pool_max)
        try:
            return cls(
                database,
                archive=archive,
                retention=retention,
                owns_database=True,
                text_index=text_index,
                migrate=migrate,
            )
        except BaseException:
            database.close()
            raise

    @property
    def safe_url(self) -> str:
        return self._db.safe_url

    @property
    def database(self) -> PgDatabase:
        """The pool this store runs on (console users share it: one pool per manager)."""
        return self._db

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("alert store is closed")

    # ---- ingest ----------------------------------------------------------------------------

    def seen_events(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        self._check_open()
        wanted = set(keys)
        if not wanted:
            return set()
        pairs = sorted(wanted)

        def work(conn: Connection) -> set[tuple[str, str]]:
            cursor = conn.execute(
                "SELECT s.event_key, s.recipient_account FROM seen_events s "
                "JOIN unnest(%s::text[], %s::text[]) AS w(k, a) "
                "ON s.event_key = w.k AND s.recipient_account = w.a",
                ([k for k, _ in pairs], [a for _, a in pairs]),
            )
            return {(str(row[0]), str(row[1])) for row in cursor}

        return self._db.read("dedupe lookup", work)

    def commit(self, events: Sequence[EventRow], alerts: Sequence[Alert]) -> int:
        self._check_open()
        now_ms = int(utc_now().timestamp() * 1000)
        rows = [alert_row(alert) for alert in alerts]
        stored = 0
        archived = [
            (
                now_ms,
                e.event_key,
                e.recipient_account,
                e.agent_id,
                time_ms(e.event_time),
                e.location,
                e.raw,
            )
            for e in (events if self.archive else ())
        ]
        with self._db.transaction("commit") as conn:
            if events:
                # In key order: concurrent commits then lock index entries in one order.
                keys = sorted({(e.event_key, e.recipient_account) for e in events})
                copy_rows(conn, SEEN_IN, ((k, a, now_ms) for k, a in keys))
                conn.execute(SEEN_IN.insert_sql)
            if archived:
                copy_rows(conn, ARCHIVE_IN, archived)
            if rows:
                copy_rows(conn, ALERTS_IN, rows)
            if archived or rows:
                # Held to the commit: the seq values of alerts and archived events are handed
                # out in commit order, so a follower of either never moves past a slower writer.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (FOLLOW_LOCK,))
            if archived:
                conn.execute(ARCHIVE_IN.insert_sql)
            if rows:
                stored = max(conn.execute(ALERTS_IN.insert_sql).rowcount, 0)
        if stored < len(rows):
            log.info(
                "stage=store ignored %d duplicate alert(s) (same event and rule)",
                len(rows) - stored,
            )
        return stored

    # ---- queries ---------------------------------------------------------------------------

    def query(self, q: AlertQuery) -> AlertPage:
        self._check_open()
        basis = q.filter.time_basis
        column = filters.time_column(basis)
        where, params = filters.where(q.filter)
        if q.page_token:
            _, time_ms, cursor = decode_page_token(q.page_token)
            # Keyset paging on (time, seq): stable while new alerts arrive.
            where.append(f"({column}, seq) < (%s, %s)")
            params += [time_ms, cursor]
        sql = f"{_SELECT_ALERT}{filters.joined(where)} ORDER BY {column} DESC, seq DESC LIMIT %s"
        params.append(q.limit + 1)
        rows = self._db.read("alert query", lambda conn: conn.execute(sql, params).fetchall())
        more = len(rows) > q.limit
        alerts = [stored_alert(row) for row in rows[: q.limit]]
        token = ""
        if more and alerts:
            last = rows[q.limit - 1]
            token = encode_page_token(basis, int(last[2 if column == "ts_ms" else 3]), last[0])
        return AlertPage(alerts=alerts, next_page_token=token)

    def follow(self, q: AlertQuery, after_cursor: int | None) -> tuple[list[StoredAlert], int]:
        self._check_open()

        def work(conn: Connection) -> tuple[list[StoredAlert], int]:
            row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()
            top = int(row[0]) if row else 0
            if after_cursor is None or after_cursor >= top:
                return [], top if after_cursor is None else after_cursor
            where, params = filters.where(q.filter, with_time=False)
            if q.filter.start is not None:
                where.append(f"{filters.time_column(q.filter.time_basis)} >= %s")
                params.append(filters.to_ms(q.filter.start))
            where.insert(0, "seq > %s AND seq <= %s")
            params[:0] = [after_cursor, top]
            rows = conn.execute(
                f"{_SELECT_ALERT}{filters.joined(where)} ORDER BY seq LIMIT %s",
                [*params, q.limit],
            ).fetchall()
            cursor = int(rows[-1][0]) if len(rows) >= q.limit else top
            return [stored_alert(r) for r in rows], cursor

        return self._db.read("alert follow", work)

    def follow_archive(
        self, after_cursor: int | None, limit: int
    ) -> tuple[list[ArchivedEvent], int]:
        self._check_open()

        def work(conn: Connection) -> tuple[list[ArchivedEvent], int]:
            # seq is handed out under FOLLOW_LOCK, held to the commit, so every seq up to the
            # current top is committed: nothing below it can appear later.
            row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM archive").fetchone()
            top = int(row[0]) if row else 0
            if after_cursor is None or after_cursor >= top:
                return [], top if after_cursor is None else after_cursor
            rows = conn.execute(
                "SELECT seq, received_ms, agent_id, event_time_ms, location, raw FROM archive "
                "WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
                (after_cursor, top, limit),
            ).fetchall()
            cursor = int(rows[-1][0]) if len(rows) >= limit else top
            return [archived_event(r) for r in rows], cursor

        return self._db.read("archive follow", work)

    def stats(self, q: StatsQuery) -> StatsResult:
        self._check_open()
        return self._db.read("alert stats", lambda conn: stats_result(q, *_counting(conn)))

    def series(self, q: SeriesQuery) -> SeriesResult:
        self._check_open()
        return self._db.read("alert series", lambda conn: series_result(q, *_counting(conn)))

    def ping(self) -> None:
        """StoreError unless a fresh connection (not a pooled one) answers and finds the alerts
        table."""
        self._check_open()
        conn = self._db.connect_fresh()
        try:
            row = conn.execute("SELECT to_regclass('alerts') IS NOT NULL").fetchone()
        except psycopg.Error as exc:
            raise self._db.error("ping", exc) from exc
        finally:
            conn.close()
        if not (row and row[0]):
            raise StoreError(f"PostgreSQL {self._db.safe_url}: no alerts table")

    def output_cursor(self, name: str) -> int | None:
        self._check_open()
        row = self._db.read(
            "output cursor read",
            lambda conn: conn.execute(
                "SELECT cursor FROM output_cursors WHERE name = %s", (name,)
            ).fetchone(),
        )
        return None if row is None else int(row[0])

    def save_output_cursor(self, name: str, cursor: int) -> None:
        self._check_open()
        with self._db.transaction("output cursor save") as conn:
            conn.execute(
                "INSERT INTO output_cursors (name, cursor, updated_ms) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, "
                "updated_ms = excluded.updated_ms",
                (name, cursor, int(utc_now().timestamp() * 1000)),
            )

    def counts(self) -> dict[str, int]:
        """Rows per table: alerts, archived events, remembered event keys."""
        self._check_open()

        def work(conn: Connection) -> dict[str, int]:
            out = {}
            for table in STORE_TABLES:
                row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                out[table] = int(row[0]) if row else 0
            return out

        return self._db.read("count", work)

    # ---- retention -------------------------------------------------------------------------

    def prune(self, now: datetime | None = None) -> PruneResult:
        self._check_open()
        now = now or utc_now()
        alerts_cut, archive_cut, dedupe_cut = self.retention.cutoffs(now)
        by_age = {
            "alerts": self._delete_older("alerts", "ts_ms", alerts_cut),
            "archive": self._delete_older("archive", "received_ms", archive_cut),
            "seen_events": self._delete_older("seen_events", "seen_ms", dedupe_cut),
        }
        by_size, notes = self._enforce_size_cap()
        return PruneResult(
            alerts_by_age=by_age["alerts"],
            archive_by_age=by_age["archive"],
            dedupe_by_age=by_age["seen_events"],
            alerts_by_size=by_size["alerts"],
            archive_by_size=by_size["archive"],
            bytes_in_use=self.bytes_in_use(),
            notes=tuple(notes),
        )

    def _delete_chunks(self, table: str, pick: str, params: tuple[Any, ...], most: int) -> int:
        """Delete the rows ``pick`` (a SELECT of ctids ending in LIMIT %s) names, in chunks of
        ``DELETE_CHUNK``, at most ``most`` rows."""
        removed = 0
        while removed < most:
            step = min(DELETE_CHUNK, most - removed)
            with self._db.transaction(f"retention on {table}") as conn:
                done = conn.execute(
                    f"DELETE FROM {table} WHERE ctid = ANY(ARRAY({pick}))", (*params, step)
                ).rowcount
            removed += done
            if done < step:
                break
        return removed

    def _delete_older(self, table: str, column: str, cut: datetime | None) -> int:
        if cut is None:
            return 0
        pick = f"SELECT ctid FROM {table} WHERE {column} < %s LIMIT %s"
        return self._delete_chunks(table, pick, (filters.to_ms(cut),), 2**62)

    def _delete_oldest(self, table: str, count: int) -> int:
        pick = f"SELECT ctid FROM {table} ORDER BY seq LIMIT %s"
        return self._delete_chunks(table, pick, (), count)

    def bytes_in_use(self) -> int:
        """Bytes of the rows the store keeps (alerts, archive, dedupe keys), indexes and free
        space not counted: what retention can actually reduce.

        Exact up to ``SIZE_SAMPLE_ROWS`` rows a table; above, the exact row count times the
        average row size of a page sample (``TABLESAMPLE SYSTEM``), so an hourly pass over
        millions of alerts reads a few thousand pages, not the whole table."""

        def work(conn: Connection) -> int:
            total = 0
            for table in STORE_TABLES:
                row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
                rows = int(row[0]) if row else 0
                if not rows:
                    continue
                sample = ""
                if rows > SIZE_SAMPLE_ROWS:
                    sample = f" TABLESAMPLE SYSTEM ({100 * SIZE_SAMPLE_ROWS / rows:.4f})"
                row = conn.execute(
                    f"SELECT AVG(pg_column_size(t.*)) FROM {table} t{sample}"
                ).fetchone()
                if row is None or row[0] is None:  # the sample drew no page: read them all
                    row = conn.execute(f"SELECT AVG(pg_column_size(t.*)) FROM {table} t").fetchone()
                total += round(rows * float(row[0] if row and row[0] is not None else 0))
            return total

        return self._db.read("size check", work)

    def _enforce_size_cap(self) -> tuple[dict[str, int], list[str]]:
        return enforce_size_cap(
            self.retention.max_db_bytes, self.bytes_in_use, self.counts, self._delete_oldest
        )

    def close(self) -> None:
        if not self._closed and self._owns:
            self._db.close()
        self._closed = True


def _counting(conn: Connection) -> tuple[Any, Any]:
    """The ``count`` and ``label`` of ``store/grouping.py`` on this connection."""

    def count(flt: AlertFilter, field: StatsField | None, bucket_ms: int | None) -> Grouped:
        return aggregate.count(conn, flt, field, bucket_ms)

    def label(field: StatsField, key: str) -> str:
        return aggregate.label(conn, field, key)

    return count, label


def _conforms(store: PostgresAlertStore) -> AlertStore:
    """Type-checked proof that PostgresAlertStore implements the AlertStore protocol."""
    return store
