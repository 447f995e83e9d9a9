"""What one analysis process needs, built from manager.toml: the ruleset and analyzer, and a
read-only dedupe lookup on the manager's database.

Apart from ``setup`` (which builds the worker pool itself) so that a worker process can build
its own parts without importing the pool that started it.
"""

from __future__ import annotations

from pathlib import Path

from trailwarden.common.errors import ConfigError
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths
from trailwarden.manager.analysis.ruleset import load_rules
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.pipeline.batch_analysis import SeenLookup
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database


def ruleset_paths(config: ManagerConfig) -> list[Path]:
    paths = list(default_ruleset_paths()) if config.analysis.default_rules else []
    paths += [config.resolve(p) for p in config.analysis.rules]
    if not paths:
        raise ConfigError(f"{config.home / 'manager.toml'}: [analysis] loads no rules at all")
    return paths


def load_configured_rules(config: ManagerConfig) -> Ruleset:
    """The ruleset manager.toml's ``[analysis]`` names (XML and Sigma); RulesetError if it does
    not load, or loads no rule at all (a manager must not start watching nothing). The
    analyzers and the console's rules page both use it."""
    lists_root = config.resolve(config.analysis.lists_root) if config.analysis.lists_root else None
    return load_rules(ruleset_paths(config), lists_root)


def build_analyzer(config: ManagerConfig) -> Analyzer:
    return Analyzer(load_configured_rules(config), config.name)


def build_seen_lookup(config: ManagerConfig) -> SeenLookup:
    """For a worker process: read-only dedupe lookups on the manager's alert store (the
    PostgreSQL database ``[store] url`` names, else the manager's SQLite file)."""
    if "url" in config.store:
        from trailwarden.manager.store.postgres.alerts import PostgresAlertStore
        from trailwarden.manager.store.postgres.url import check_store_url

        url = check_store_url(config.store["url"], "manager.toml [store].url")
        # The manager migrated before it started the workers: they only read.
        return PostgresAlertStore.from_url(url, pool_max=2, migrate=False).seen_events
    database = Database(config.database_path)
    return SqliteAlertStore(database).seen_events
