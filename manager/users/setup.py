"""Which `UserStore` a manager runs: beside the alerts in PostgreSQL when ``[store] url`` is
set (so managers sharing the database share logins and sessions), else in manager.db."""

from __future__ import annotations

from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.store.postgres.alerts import PostgresAlertStore
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.users.base import UserStore
from trailwarden.manager.users.postgres import PostgresUserStore
from trailwarden.manager.users.sqlite import SqliteUserStore


def build_user_store(
    alerts: SqliteAlertStore | PostgresAlertStore, database: Database, registry: Registry
) -> UserStore:
    """Users on the alert store's PostgreSQL pool, audited in this manager's registry; or in
    the SQLite ``database``, audited in the same transaction."""
    if isinstance(alerts, PostgresAlertStore):
        return PostgresUserStore(alerts.database, registry.audit)
    return SqliteUserStore(database)
