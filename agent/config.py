"""agent.toml: what only the agent host decides — manager address, identity, spool, sources.

Central config (pushed by the manager) carries `[[sources]]` with the same schema; the local
file's sources apply until a central revision arrives.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trailwarden.common.logs import LOG_FORMATS
from trailwarden.common.observability.config import MetricsConfig, parse_metrics_section
from trailwarden.common.schema.sources import SourceConfig, parse_sources
from trailwarden.common.tomlconfig import Section, load_toml

CONFIG_FILE = "agent.toml"
DEFAULT_SPOOL_LIMIT = 1024**3
"""Bytes the spool may hold before fetching pauses (1 GiB)."""
DEFAULT_HEARTBEAT_SECONDS = 15.0
DEFAULT_PROGRESS_LOG_SECONDS = 30.0
MAX_PROGRESS_LOG_SECONDS = 86400.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class AgentConfig:
    home: Path
    name: str
    """Agent name (as enrolled)."""
    manager_address: str
    """host:port of the manager's link (mutual TLS)."""
    server_name: str
    """Name to check the manager's certificate against; '' = the host in manager_address."""
    spool_path: Path
    spool_limit_bytes: int
    heartbeat_seconds: float
    log_level: str
    sources: tuple[SourceConfig, ...]
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """``[metrics]``: /metrics, /healthz and /readyz over HTTP (off unless ``listen`` is set)."""
    log_format: str = "text"
    """``text`` (the default) or ``json``: one object a line (common/logs.py)."""
    progress_log_seconds: float = DEFAULT_PROGRESS_LOG_SECONDS
    """``agent run``: a progress line per running source this often (0 = never)."""


def load_agent_config(home: Path) -> AgentConfig:
    path = home / CONFIG_FILE
    return parse_agent_config(load_toml(path), home, str(path))


def parse_agent_config(data: dict[str, Any], home: Path, origin: str) -> AgentConfig:
    top = Section(data, origin)
    agent = top.section("agent")
    name = agent.str("name", socket.gethostname())
    log_level = agent.str("log_level", "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise agent.error("log_level", f"expected one of {', '.join(LOG_LEVELS)}")
    log_format = agent.str("log_format", "text").lower()
    if log_format not in LOG_FORMATS:
        raise agent.error("log_format", f"expected one of {', '.join(LOG_FORMATS)}")
    heartbeat = agent.duration("heartbeat", DEFAULT_HEARTBEAT_SECONDS)
    progress_every = agent.duration("progress_log_seconds", DEFAULT_PROGRESS_LOG_SECONDS)
    if progress_every != 0 and not 1 <= progress_every <= MAX_PROGRESS_LOG_SECONDS:
        raise agent.error(
            "progress_log_seconds",
            f"expected 0 (never) or 1s..24h, got {progress_every:g}s",
        )
    agent.done()
    manager = top.section("manager")
    address = manager.str("address", "")
    if ":" not in address:
        raise manager.error("address", "expected host:port of the manager link")
    server_name = manager.str("server_name", "")
    manager.done()
    spool = top.section("spool")
    spool_path = Path(spool.str("path", "spool.db")).expanduser()
    limit = spool.size("limit", DEFAULT_SPOOL_LIMIT)
    spool.done()
    sources = parse_sources(top.raw("sources", []), origin)
    metrics = parse_metrics_section(top)
    top.done()
    return AgentConfig(
        home=home,
        name=name,
        manager_address=address,
        server_name=server_name,
        spool_path=spool_path if spool_path.is_absolute() else home / spool_path,
        spool_limit_bytes=limit,
        heartbeat_seconds=heartbeat,
        log_level=log_level,
        sources=sources,
        metrics=metrics,
        log_format=log_format,
        progress_log_seconds=progress_every,
    )


def render_agent_toml(name: str, manager_address: str) -> str:
    return f"""\
# TrailWarden agent configuration (written by `trailwarden agent enroll`).
# Unknown keys are refused at start; see docs/CONFIGURATION.md.

[agent]
name = "{name}"
log_level = "INFO"
log_format = "text"             # or "json": one object a line
heartbeat = "15s"
progress_log_seconds = 30       # a running pass logs its progress this often; 0 = never

[manager]
address = "{manager_address}"   # the manager's link (mutual TLS)

[spool]
path = "spool.db"               # records wait here until the manager acknowledges them
limit = "1GiB"                  # fetching pauses when the spool holds this much

# Sources may also come from the manager (central config). A local example:
# [[sources]]
# type = "cloudtrail"
# bucket = "org-trail-logs"
# aws_profile = "audit"
# regions = ["us-east-1"]
# interval = "5m"
"""
