"""`[store] url`: which URLs select PostgreSQL, how a bad one is refused, and that a password
never shows in a message (URL masking, driver errors, an unreachable server)."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from pathlib import Path

import psycopg
import pytest

from trailwarden.common.errors import ConfigError, StoreError
from trailwarden.manager.config import load_manager_config
from trailwarden.manager.pipeline.setup import build_store
from trailwarden.manager.store.postgres.alerts import PostgresAlertStore
from trailwarden.manager.store.postgres.database import PgDatabase
from trailwarden.manager.store.postgres.url import check_store_url, mask_url, scrub
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

from .factory import event_for, ids_of, make_alert


@pytest.mark.parametrize(
    ("url", "masked", "secret"),
    [
        ("postgresql://tw:Secret1@db:5432/tw", "postgresql://tw:***@db:5432/tw", "Secret1"),
        ("postgres://tw@db/tw", "postgres://tw@db/tw", ""),
        (
            "postgresql://db/tw?password=Secret1&sslmode=require",
            "postgresql://db/tw?password=***&sslmode=require",
            "Secret1",
        ),
        ("postgresql://tw:Sec%40ret1@db/tw", "postgresql://tw:***@db/tw", "Sec@ret1"),
    ],
)
def test_mask_url_hides_every_password(url: str, masked: str, secret: str) -> None:
    assert mask_url(url) == masked
    # A driver error may echo the URL or the password alone: both are scrubbed.
    message = scrub(f"connecting to {url}: password {secret or 'none'} rejected", url)
    assert mask_url(url) in message
    if secret:
        assert secret not in message and "password *** rejected" in message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5432, "expected a string"),
        ("mysql://db/tw", "is not a PostgreSQL URL"),
        ("postgresql://tw:hidden@db:5432", "naming a database"),
        ("/var/lib/trailwarden/manager.db", "leave url out"),
    ],
)
def test_bad_store_url_is_a_config_error_naming_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        check_store_url(value, "manager.toml [store].url")
    assert "manager.toml [store].url" in str(caught.value)
    assert "hidden" not in str(caught.value)


def test_unreachable_server_is_a_store_error_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql://tw:s3cr3t@127.0.0.1:1/trailwarden"
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as caught:
        PgDatabase(url, timeout=1.0)
    text = str(caught.value) + caplog.text
    assert "127.0.0.1:1" in str(caught.value) and "cannot connect" in str(caught.value)
    assert "s3cr3t" not in text


def test_url_selects_postgres_and_no_url_keeps_sqlite(
    manager_home_path: Path, postgres_url: str
) -> None:
    config = load_manager_config(manager_home_path)
    database = Database(manager_home_path / "manager.db")
    try:
        embedded = build_store(config, database)
        assert isinstance(embedded, SqliteAlertStore)
        store = build_store(
            dataclasses.replace(config, store={"url": postgres_url, "archive": True}), database
        )
        try:
            assert isinstance(store, PostgresAlertStore) and store.archive
            store.ping()
        finally:
            store.close()
    finally:
        database.close()


@pytest.fixture
def manager_home_path(tmp_path: Path) -> Path:
    from tests.fixtures.system import make_manager_home

    return make_manager_home(tmp_path / "manager").path


def _has_trigram_index(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('alerts_json_trgm') IS NOT NULL").fetchone()
    return bool(row and row[0])


def test_text_index_is_built_on_request_and_dropped_when_turned_off(postgres_url: str) -> None:
    """The same search answers with the trigram index and without it (a scan)."""
    alerts = [make_alert(extra_data={"requestParameters": {"key": f"K-{i % 3}"}}) for i in range(9)]
    indexed = PostgresAlertStore.from_url(postgres_url, text_index=True)
    try:
        assert indexed.text_index and _has_trigram_index(postgres_url)
        indexed.commit([event_for(a) for a in alerts], alerts)
        with_index = ids_of(indexed, search="k-1")
    finally:
        indexed.close()
    assert len(with_index) == 3
    worker = PostgresAlertStore.from_url(postgres_url, migrate=False)  # an analysis worker
    worker.close()
    assert _has_trigram_index(postgres_url), "a worker must not touch the schema"
    plain = PostgresAlertStore.from_url(postgres_url)
    try:
        assert not plain.text_index and not _has_trigram_index(postgres_url)
        assert ids_of(plain, search="k-1") == with_index
    finally:
        plain.close()


def test_text_index_on_sqlite_is_refused(manager_home_path: Path) -> None:
    config = load_manager_config(manager_home_path)
    database = Database(manager_home_path / "manager.db")
    try:
        with pytest.raises(ConfigError, match=r"\[store\]\.text_index: only the PostgreSQL"):
            build_store(dataclasses.replace(config, store={"text_index": True}), database)
    finally:
        database.close()


def test_size_of_a_large_table_is_estimated_from_a_page_sample(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trailwarden.manager.store.postgres import alerts as pg_alerts

    store = PostgresAlertStore.from_url(postgres_url)
    try:
        # Random text: it does not compress, so each row is about its JSON's length.
        batch = [make_alert(extra_data={"pad": secrets.token_hex(750)}) for _ in range(3000)]
        store.commit([event_for(a) for a in batch], batch)
        exact = store.bytes_in_use()
        monkeypatch.setattr(pg_alerts, "SIZE_SAMPLE_ROWS", 300)  # now every table is sampled
        estimated = store.bytes_in_use()
    finally:
        store.close()
    assert exact > 3000 * 1500
    assert 0.8 * exact <= estimated <= 1.2 * exact
