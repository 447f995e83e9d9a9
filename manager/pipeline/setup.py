"""Build the manager's analysis pipeline parts from manager.toml.

Kept apart from server.py so that the server only wires services together, and so tests and
tools (logtest, benchmarks) can build the same pipeline the manager runs.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.checkpoint import SAFETY_NET_PAGES
from trailwarden.manager.store.sqlite.database import Database

_STORE_KEYS = {"archive", "retention"}


def build_analysis(config: ManagerConfig, store: SqliteAlertStore) -> Analysis:
    """Analysis in the ingest thread (one worker) or in worker processes (several)."""
    count = worker_count(config.analysis_workers)
    if count == 1:
        return InlineAnalysis(build_analyzer(config), store)
    checked = build_analyzer(config)  # refuse a broken ruleset here, before any worker starts
    pool = ProcessAnalysis(config.home, count)
    pool.rule_count = checked.rule_count
    pool.warm_up()
    return pool


def build_store(config: ManagerConfig, database: Database) -> SqliteAlertStore:
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
    return SqliteAlertStore(
        database,
        archive=archive,
        retention=retention,
        # The manager checkpoints on its own thread (store/sqlite/checkpoint.py); commits only past
        # the safety net.
        wal_autocheckpoint_pages=SAFETY_NET_PAGES,
    )


def build_outputs(config: ManagerConfig, store: SqliteAlertStore) -> Sequence[Delivery[Any]]:
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
