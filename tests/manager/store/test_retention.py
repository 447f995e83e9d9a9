"""Retention: the policy from manager.toml, pruning by age and the database size cap."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trailwarden.common.errors import ConfigError
from trailwarden.manager.store.retention import (
    DEFAULT_ALERTS_DAYS,
    DEFAULT_MAX_DB_BYTES,
    RetentionPolicy,
)
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

from .factory import BASE_TIME, event_for, make_alert


def test_policy_defaults_and_mapping() -> None:
    assert RetentionPolicy().alerts_days == DEFAULT_ALERTS_DAYS
    assert RetentionPolicy().max_db_bytes == DEFAULT_MAX_DB_BYTES
    policy = RetentionPolicy.from_mapping(
        {"alerts_days": 7, "archive_days": 0, "max_db_size": "500MiB", "interval": "10m"},
        "manager.toml [retention]",
    )
    assert policy == RetentionPolicy(
        alerts_days=7, archive_days=0, max_db_bytes=500 * 1024**2, interval_seconds=600
    )
    assert RetentionPolicy.from_mapping({"max_db_bytes": 1000}).max_db_bytes == 1000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"alert_days": 7}, r"manager.toml \[retention\]: unknown key\(s\) 'alert_days'"),
        ({"alerts_days": -1}, "alerts_days: must be a non-negative integer"),
        ({"alerts_days": "7"}, "alerts_days: must be a non-negative integer"),
        ({"max_db_size": "lots"}, "max_db_size: not a size"),
        ({"max_db_size": "1GB", "max_db_bytes": 5}, "not both"),
        ({"interval": "often"}, "interval: not a duration"),
    ],
)
def test_bad_policy_names_the_file_and_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RetentionPolicy.from_mapping(data, "manager.toml [retention]")


def test_sqlite_file_stops_growing_at_the_size_cap(database: Database) -> None:
    """SQLite reuses the pages retention frees: past the cap the file does not grow (the cap
    itself is in contract/test_retention.py, on both backends)."""
    unbounded = SqliteAlertStore(database, retention=RetentionPolicy(max_db_bytes=0))
    alerts = [
        make_alert(when=BASE_TIME + timedelta(minutes=i), extra_data={"pad": "x" * 2000})
        for i in range(600)
    ]
    unbounded.commit([event_for(a) for a in alerts], alerts)
    cap = unbounded.bytes_in_use() // 2
    capped = SqliteAlertStore(database, retention=RetentionPolicy(alerts_days=0, max_db_bytes=cap))
    assert capped.prune(now=BASE_TIME).alerts_by_size > 0
    size_before = database.path.stat().st_size
    more = [make_alert(extra_data={"pad": "y" * 2000}) for _ in range(50)]
    capped.commit([event_for(a) for a in more], more)
    capped.prune(now=BASE_TIME)
    assert capped.bytes_in_use() <= cap
    assert database.path.stat().st_size <= size_before
