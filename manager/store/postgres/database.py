"""A PostgreSQL database for the manager: a bounded connection pool, transactions whose driver
errors become ``StoreError`` (with the URL's password masked), and versioned migrations.

Applied migrations are recorded in ``schema_version`` (one row per component and version) and
the missing ones run on start, each in its own transaction, under an advisory lock so two
managers starting against one database never run the same migration twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from trailwarden.common.errors import StoreError
from trailwarden.manager.store.postgres.url import mask_url, scrub

log = logging.getLogger(__name__)

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]
"""A pooled connection as the store uses it (rows as tuples)."""

POOL_MIN = 1
POOL_MAX = 8
"""Connections at most: two ingest threads, the outputs, retention and Admin API reads."""
CONNECT_TIMEOUT_SECONDS = 10.0
"""How long to wait for a connection from the pool (or the server) before StoreError."""
MIGRATION_LOCK = 0x74770001
"""``pg_advisory_xact_lock`` key held while migrations run ("tw" + 1)."""


class PgDatabase:
    """A pool of connections to one PostgreSQL database.

    ``transaction()`` lends a connection inside BEGIN … COMMIT (ROLLBACK on any error);
    ``read()`` runs a read-only piece of work. Threads share the pool, never a connection.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = POOL_MIN,
        max_size: int = POOL_MAX,
        timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.safe_url = mask_url(url)
        """The URL as it may be shown: password masked."""
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            name="trailwarden-store",
            kwargs={"connect_timeout": max(1, int(timeout))},
            check=ConnectionPool.check_connection,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.safe_url} within {timeout:g}s: "
                f"{self._why(exc)}"
            ) from None

    def _why(self, exc: BaseException) -> str:
        """A driver error as text without the password (and without psycopg's line noise)."""
        return scrub(" ".join(str(exc).split()), self.url)

    def error(self, what: str, exc: BaseException) -> StoreError:
        """``StoreError`` naming the database (password masked) and what failed."""
        return StoreError(f"PostgreSQL {self.safe_url}: {what} failed: {self._why(exc)}")

    @contextmanager
    def transaction(self, what: str) -> Iterator[Connection]:
        """A pooled connection in one transaction; driver errors become StoreError naming
        ``what``. Commits when the block ends, rolls back if it raises."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise self.error(what, exc) from exc

    def read(self, what: str, work: Callable[[Connection], T]) -> T:
        """``work`` on a pooled connection (its own transaction, so it reads one snapshot)."""
        with self.transaction(what) as conn:
            return work(conn)

    def connect_fresh(self, timeout: float = 2.0) -> Connection:
        """A new connection outside the pool (readiness checks must not trust a pooled one)."""
        try:
            return psycopg.connect(self.url, connect_timeout=max(1, int(timeout)), autocommit=True)
        except psycopg.Error as exc:
            raise self.error("connect", exc) from exc

    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply ``migrations[n:]`` of ``component``; returns the version now in force.

        Version N is ``migrations[N-1]``, a SQL script run as one statement batch. Never edit a
        shipped migration: append a new one.
        """
        with self.transaction(f"{component} schema migration") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " component TEXT NOT NULL, version INTEGER NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                " PRIMARY KEY (component, version))"
            )
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = %s",
                (component,),
            ).fetchone()
            current = int(row[0]) if row else 0
            if current > len(migrations):
                raise StoreError(
                    f"PostgreSQL {self.safe_url}: {component} schema version {current} is "
                    f"newer than this TrailWarden knows ({len(migrations)}); upgrade TrailWarden"
                )
            for version in range(current + 1, len(migrations) + 1):
                # One transaction for them all: a failed migration leaves the old version whole.
                conn.execute(migrations[version - 1].encode())
                conn.execute(
                    "INSERT INTO schema_version (component, version) VALUES (%s, %s)",
                    (component, version),
                )
                log.info(
                    "stage=store PostgreSQL %s: %s schema migrated to v%d",
                    self.safe_url,
                    component,
                    version,
                )
        return len(migrations)

    def close(self) -> None:
        self._pool.close()
