"""Build the manager's analysis pipeline parts from manager.toml.

Kept apart from server.py so that the server only wires services together, and so tests and
tools (logtest, benchmarks) can build the same pipeline the manager runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trailwarden.common.errors import ConfigError
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.outputs.alerts_file import AlertsFile, AlertsFileConfig
from trailwarden.manager.outputs.archives import ArchivesFile, archive_feed
from trailwarden.manager.outputs.config import AlertsFileOutput, SlackOutput, WebhookOutput
from trailwarden.manager.outputs.delivery import PAGE, POLL_SECONDS, Delivery
from trailwarden.manager.outputs.slack import Slack
from trailwarden.manager.outputs.smtp import EmailDigest
from trailwarden.manager.outputs.webhook import Webhook
from trailwarden.manager.pipeline.analyzer import build_analyzer
from trailwarden.manager.pipeline.workers import (
    Analysis,
    InlineAnalysis,
    ProcessAnalysis,
    worker_count,
)
from trailwarden.manager.store.postgres.alerts import PostgresAlertStore
from trailwarden.manager.store.postgres.url import check_store_url, password_of
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.checkpoint import SAFETY_NET_PAGES
from trailwarden.manager.store.sqlite.database import Database

log = logging.getLogger(__name__)

_STORE_KEYS = {"archive", "retention", "text_index", "url"}

ManagerStore = SqliteAlertStore | PostgresAlertStore
"""The stores a manager may run on: SQLite (embedded default) or PostgreSQL (``[store] url``)."""


def build_analysis(config: ManagerConfig, store: ManagerStore) -> Analysis:
    """Analysis in the ingest thread (one worker) or in worker processes (several)."""
    count = worker_count(config.analysis_workers)
    if count == 1:
        return InlineAnalysis(build_analyzer(config), store)
    checked = build_analyzer(config)  # refuse a broken ruleset here, before any worker starts
    pool = ProcessAnalysis(config.home, count)
    pool.rule_count = checked.rule_count
    pool.warm_up()
    return pool


def build_store(config: ManagerConfig, database: Database) -> ManagerStore:
    """The alert store ``[store]`` names: PostgreSQL when it gives a ``url``, else the alerts
    tables of the manager's SQLite ``database`` (which keeps the registry either way)."""
    origin = f"{config.home / 'manager.toml'} [store]"
    unknown = sorted(set(config.store) - _STORE_KEYS)
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(map(repr, unknown))}")
    archive = config.store.get("archive", False)
    if not isinstance(archive, bool):
        raise ConfigError(f"{origin}.archive: expected true or false")
    # archives.json is fed from the store's event archive (manager/outputs/archives.py).
    archive = archive or config.archives.enabled
    retention = RetentionPolicy.from_mapping(
        config.store.get("retention", {}), f"{origin}.retention"
    )
    text_index = config.store.get("text_index", False)
    if not isinstance(text_index, bool):
        raise ConfigError(f"{origin}.text_index: expected true or false")
    if "url" in config.store:
        url = check_store_url(config.store["url"], f"{origin}.url")
        warn_if_exposed(url, config.home / "manager.toml")
        return PostgresAlertStore.from_url(
            url, archive=archive, retention=retention, text_index=text_index
        )
    if text_index:
        raise ConfigError(
            f"{origin}.text_index: only the PostgreSQL store (url) has a text index; "
            "leave it out for SQLite"
        )
    return SqliteAlertStore(
        database,
        archive=archive,
        retention=retention,
        # The manager checkpoints on its own thread (store/sqlite/checkpoint.py); commits only past
        # the safety net.
        wal_autocheckpoint_pages=SAFETY_NET_PAGES,
    )


def warn_if_exposed(url: str, toml: Path) -> None:
    """A password in the URL is a secret in manager.toml: say so if others may read the file
    (a ~/.pgpass of the manager's user, mode 0600, keeps it out of the config altogether)."""
    try:
        exposed = bool(password_of(url)) and bool(toml.stat().st_mode & 0o077)
    except OSError:
        return
    if exposed:
        log.warning(
            "stage=store %s holds the PostgreSQL password in [store] url and is readable by "
            "other users: chmod 600 it, or move the password to the manager user's ~/.pgpass",
            toml,
        )


def build_outputs(config: ManagerConfig, store: ManagerStore) -> Sequence[Delivery[Any]]:
    """One delivery loop per enabled output, each fed from the store by its own cursor."""
    home = config.home
    deliveries: list[Delivery[Any]] = []
    for output in config.outputs:
        if isinstance(output, AlertsFileOutput):
            file_config = AlertsFileConfig(
                enabled=True, max_bytes=output.max_bytes, min_level=output.min_level
            )
            deliveries.append(Delivery(store, AlertsFile(home / "alerts", file_config)))
            continue
        remote: Webhook | Slack | EmailDigest
        gather = 0.0
        if isinstance(output, WebhookOutput):
            remote = Webhook(output, home)
        elif isinstance(output, SlackOutput):
            remote = Slack(output, home)
        else:
            remote = EmailDigest(output, home)
            gather = output.digest_seconds
        deliveries.append(
            Delivery(
                store,
                remote,
                retry_seconds=output.retry.initial_seconds,
                max_retry_seconds=output.retry.max_seconds,
                gather_seconds=gather,
                poll_seconds=max(POLL_SECONDS, gather),
            )
        )
    if config.archives.enabled:
        archives = ArchivesFile(home / "alerts", config.archives, config.name)
        deliveries.append(Delivery(store, archives, feed=archive_feed(store, PAGE)))
    return tuple(deliveries)
