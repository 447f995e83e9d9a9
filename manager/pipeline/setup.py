"""Build the manager's analysis pipeline parts from manager.toml.

Kept apart from server.py so that the server only wires services together, and so tests and
tools (logtest, benchmarks) can build the same pipeline the manager runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trailwarden.common.errors import ConfigError
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset
from trailwarden.manager.batch_analysis import SeenLookup
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.ingest import AlertSink
from trailwarden.manager.outputs.alerts_file import AlertsFile, AlertsFileConfig
from trailwarden.manager.store.checkpoint import SAFETY_NET_PAGES
from trailwarden.manager.store.database import Database
from trailwarden.manager.store.retention import RetentionPolicy
from trailwarden.manager.store.sqlite_alerts import SqliteAlertStore
from trailwarden.manager.workers import Analysis, InlineAnalysis, ProcessAnalysis, worker_count

_STORE_KEYS = {"archive", "retention"}


def ruleset_paths(config: ManagerConfig) -> list[Path]:
    paths = list(default_ruleset_paths()) if config.analysis.default_rules else []
    paths += [config.resolve(p) for p in config.analysis.rules]
    if not paths:
        raise ConfigError(f"{config.home / 'manager.toml'}: [analysis] loads no rules at all")
    return paths


def build_analyzer(config: ManagerConfig) -> Analyzer:
    lists_root = config.resolve(config.analysis.lists_root) if config.analysis.lists_root else None
    ruleset = load_ruleset(ruleset_paths(config), lists_root)
    return Analyzer(ruleset, config.name)


def build_analysis(config: ManagerConfig, store: SqliteAlertStore) -> Analysis:
    """Analysis in the ingest thread (one worker) or in worker processes (several)."""
    count = worker_count(config.analysis_workers)
    if count == 1:
        return InlineAnalysis(build_analyzer(config), store)
    build_analyzer(config)  # refuse a broken ruleset here, before any worker starts
    pool = ProcessAnalysis(config.home, count)
    pool.warm_up()
    return pool


def build_seen_lookup(config: ManagerConfig) -> SeenLookup:
    """For a worker process: read-only dedupe lookups on the manager's database."""
    database = Database(config.database_path)
    return SqliteAlertStore(database).seen_events


def build_store(config: ManagerConfig, database: Database) -> SqliteAlertStore:
    origin = f"{config.home / 'manager.toml'} [store]"
    unknown = sorted(set(config.store) - _STORE_KEYS)
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(map(repr, unknown))}")
    archive = config.store.get("archive", False)
    if not isinstance(archive, bool):
        raise ConfigError(f"{origin}.archive: expected true or false")
    retention = RetentionPolicy.from_mapping(
        config.store.get("retention", {}), f"{origin}.retention"
    )
    return SqliteAlertStore(
        database,
        archive=archive,
        retention=retention,
        # The manager checkpoints on its own thread (store/checkpoint.py); commits only past
        # the safety net.
        wal_autocheckpoint_pages=SAFETY_NET_PAGES,
    )


def build_alert_sinks(config: ManagerConfig) -> Sequence[AlertSink]:
    if not config.alerts_file:
        return ()
    file_config = AlertsFileConfig(
        enabled=True,
        max_bytes=config.alerts_file_max_bytes,
        min_level=config.alerts_file_min_level,
    )
    return (AlertsFile(config.home / "alerts", file_config),)
