"""manager.toml: what the manager listens on, where its state lives, how it analyses.

Parsed once at start into frozen dataclasses; unknown keys are refused with the file and key.
Paths are relative to the manager home unless absolute.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trailwarden.common.logs import LOG_FORMATS
from trailwarden.common.observability.config import MetricsConfig, parse_metrics_section
from trailwarden.common.tomlconfig import Section, load_toml
from trailwarden.manager.outputs.config import (
    AlertsFileOutput,
    ArchivesConfig,
    OutputConfig,
    parse_archives,
    parse_outputs,
)

DEFAULT_LINK_PORT = 4750
"""Mutual-TLS port for agent links and the Admin API."""
DEFAULT_ENROLL_PORT = 4751
"""Server-authenticated TLS port for enrollment (Wazuh uses 1515 for the same purpose)."""
DEFAULT_CONSOLE_PORT = 4752
"""HTTPS port of the web console."""
DEFAULT_SESSION_TTL_SECONDS = 12 * 3600
"""A console login lasts a working day at most, however active."""
DEFAULT_IDLE_TIMEOUT_SECONDS = 3600
"""A console session unused this long ends."""
MIN_SESSION_SECONDS = 60
MAX_SESSION_TTL_SECONDS = 30 * 86400
DEFAULT_ACK_WINDOW = 32
DEFAULT_MAX_CONNECTIONS = 5000
DEFAULT_ALERTS_FILE_MAX_BYTES = 256 * 1024**2
CONFIG_FILE = "manager.toml"
DATABASE_FILE = "manager.db"
CREDENTIALS_FILE = "admin.credentials"
PKI_DIR = "pki"


@dataclass(frozen=True)
class ListenConfig:
    listen: str
    """host:port to bind."""
    advertise: str
    """host:port that agents and admins should use to reach this service."""


@dataclass(frozen=True)
class AnalysisConfig:
    rules: tuple[str, ...] = ()
    """Extra rule files or folders, loaded after the shipped default ruleset."""
    default_rules: bool = True
    """Load the shipped default ruleset (80200-80299 compatible IDs and our detections)."""
    lists_root: str = ""
    """Folder that relative `<list>` paths resolve against (e.g. a Wazuh install's etc/)."""


@dataclass(frozen=True)
class ConsoleConfig:
    """`[console]`: the web console (HTTPS only)."""

    enabled: bool = True
    """Serve the console from `manager run`."""
    listen: str = f"0.0.0.0:{DEFAULT_CONSOLE_PORT}"
    """host:port to bind; port 0 picks a free port (tests), reported as `console_port`."""
    tls_cert: str = ""
    """An organisation's certificate (PEM, chain allowed) instead of one from the manager's CA."""
    tls_key: str = ""
    """Its private key (PEM, mode 0600); given with `tls_cert` or not at all."""
    session_ttl_seconds: float = DEFAULT_SESSION_TTL_SECONDS
    """Absolute lifetime of a login, however active."""
    idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS
    """A session unused this long ends (at most `session_ttl`)."""


@dataclass(frozen=True)
class ManagerConfig:
    home: Path
    name: str
    """Manager name, as in Wazuh's alerts (`manager.name`)."""
    link: ListenConfig
    enrollment: ListenConfig
    ack_window: int = DEFAULT_ACK_WINDOW
    """Unacknowledged batches an agent may have in flight."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Concurrent agent streams accepted; more are refused with RESOURCE_EXHAUSTED."""
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    store: Mapping[str, Any] = field(default_factory=dict)
    """`[store]` table, handed to the alert store's own parser (retention, archive)."""
    alerts_file: bool = True
    """Write alerts/alerts.json (Wazuh alerts.json shape) for Filebeat/Vector/Fluent Bit."""
    alerts_file_min_level: int = 0
    """Only alerts at this level or above go to the alerts file (Wazuh's log_alert_level);
    every alert is stored in the database whatever this says."""
    alerts_file_max_bytes: int = DEFAULT_ALERTS_FILE_MAX_BYTES
    """Rotate alerts/alerts.json before it grows past this size (it also rotates daily)."""
    log_level: str = "INFO"
    log_format: str = "text"
    """``text`` (the default) or ``json``: one object a line (common/logs.py)."""
    analysis_workers: int = 0
    """Analysis worker processes; 0 = one per core, 1 = analyse in the manager process."""
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """``[metrics]``: /metrics, /healthz and /readyz over HTTP (off unless ``listen`` is set)."""
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    """`[console]`: the web console."""
    outputs: tuple[OutputConfig, ...] = (AlertsFileOutput(),)
    """Every enabled output (``[outputs]`` table or ``[[outputs]]`` entries, manager/outputs/
    config.py); the ``alerts_file*`` fields above mirror the alerts file's entry."""
    archives: ArchivesConfig = field(default_factory=ArchivesConfig)
    """`[archives]`: every analysed event to alerts/archives.json."""

    @property
    def database_path(self) -> Path:
        return self.home / DATABASE_FILE

    @property
    def pki_dir(self) -> Path:
        return self.home / PKI_DIR

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.home / candidate


def load_manager_config(home: Path) -> ManagerConfig:
    path = home / CONFIG_FILE
    return parse_manager_config(load_toml(path), home, str(path))


def parse_manager_config(data: Mapping[str, Any], home: Path, origin: str) -> ManagerConfig:
    top = Section(data, origin)
    manager = top.section("manager")
    name = manager.str("name", socket.gethostname())
    ack_window = manager.int("ack_window", DEFAULT_ACK_WINDOW, minimum=1, maximum=1024)
    max_connections = manager.int("max_connections", DEFAULT_MAX_CONNECTIONS, minimum=1)
    log_level = manager.str("log_level", "INFO").upper()
    log_format = manager.str("log_format", "text").lower()
    if log_format not in LOG_FORMATS:
        raise manager.error("log_format", f"expected one of {', '.join(LOG_FORMATS)}")
    analysis_workers = manager.int("analysis_workers", 0, minimum=0, maximum=256)
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise manager.error("log_level", "expected DEBUG, INFO, WARNING or ERROR")
    manager.done()
    link = _listen(top.section("link"), DEFAULT_LINK_PORT)
    enrollment = _listen(top.section("enrollment"), DEFAULT_ENROLL_PORT)
    analysis_section = top.section("analysis")
    analysis = AnalysisConfig(
        rules=analysis_section.str_list("rules"),
        default_rules=analysis_section.bool("default_rules", True),
        lists_root=analysis_section.str("lists_root", ""),
    )
    analysis_section.done()
    store = top.raw("store", {})
    if not isinstance(store, Mapping):
        raise top.error("store", "expected a table")
    outputs = parse_outputs(top)
    archives = parse_archives(top)
    alerts_file = next((o for o in outputs if isinstance(o, AlertsFileOutput)), None)
    metrics = parse_metrics_section(top)
    console = _console(top.section("console"))
    top.done()
    return ManagerConfig(
        home=home,
        name=name,
        link=link,
        enrollment=enrollment,
        ack_window=ack_window,
        max_connections=max_connections,
        analysis=analysis,
        store=dict(store),
        alerts_file=alerts_file is not None,
        alerts_file_min_level=alerts_file.min_level if alerts_file else 0,
        alerts_file_max_bytes=(
            alerts_file.max_bytes if alerts_file else DEFAULT_ALERTS_FILE_MAX_BYTES
        ),
        log_level=log_level,
        log_format=log_format,
        analysis_workers=analysis_workers,
        metrics=metrics,
        console=console,
        outputs=outputs,
        archives=archives,
    )


def _console(section: Section) -> ConsoleConfig:
    enabled = section.bool("enabled", True)
    listen = section.str("listen", f"0.0.0.0:{DEFAULT_CONSOLE_PORT}")
    _check_address(section, "listen", listen)
    tls_cert = section.str("tls_cert", "")
    tls_key = section.str("tls_key", "")
    if bool(tls_cert) != bool(tls_key):
        raise section.error(
            "tls_key" if tls_cert else "tls_cert",
            "give tls_cert and tls_key together (or neither, for a certificate from the "
            "manager's CA)",
        )
    ttl = section.duration("session_ttl", "12h")
    if not MIN_SESSION_SECONDS <= ttl <= MAX_SESSION_TTL_SECONDS:
        raise section.error("session_ttl", f"must be between 1m and 30d, got {ttl:g}s")
    idle = section.duration("idle_timeout", "1h")
    if not MIN_SESSION_SECONDS <= idle <= ttl:
        raise section.error(
            "idle_timeout", f"must be between 1m and session_ttl ({ttl:g}s), got {idle:g}s"
        )
    section.done()
    return ConsoleConfig(
        enabled=enabled,
        listen=listen,
        tls_cert=tls_cert,
        tls_key=tls_key,
        session_ttl_seconds=ttl,
        idle_timeout_seconds=idle,
    )


def _check_address(section: Section, key: str, value: str) -> None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise section.error(key, f"expected host:port, got {value!r}")


def _listen(section: Section, default_port: int) -> ListenConfig:
    listen = section.str("listen", f"0.0.0.0:{default_port}")
    advertise = section.str("advertise", f"{socket.gethostname()}:{default_port}")
    for key, value in (("listen", listen), ("advertise", advertise)):
        _check_address(section, key, value)
    section.done()
    return ListenConfig(listen=listen, advertise=advertise)


def render_manager_toml(
    name: str,
    link: ListenConfig,
    enrollment: ListenConfig,
    console_listen: str = "",
    store_url: str = "",
) -> str:
    """The commented manager.toml that `manager init` writes (``store_url``: `--store`)."""
    store_line = (
        f"url = {json.dumps(store_url)}   # alerts, dedupe keys, archive in PostgreSQL"
        if store_url
        else '# url = "postgresql://trailwarden@db.example.org:5432/trailwarden"  # else SQLite'
    )
    return f"""\
# TrailWarden manager configuration. Paths are relative to this folder.
# Every key is documented in docs/CONFIGURATION.md; unknown keys are refused at start.

[manager]
name = "{name}"              # shown as manager.name in alerts
ack_window = {DEFAULT_ACK_WINDOW}               # unacknowledged batches per agent in flight
max_connections = {DEFAULT_MAX_CONNECTIONS}        # concurrent agent streams
log_level = "INFO"
log_format = "text"           # or "json": one object a line
analysis_workers = 0          # analysis processes: 0 = one per core, 1 = in-process

[link]                        # agents and admins, mutual TLS
listen = "{link.listen}"
advertise = "{link.advertise}"

[enrollment]                  # agent enrollment, server-authenticated TLS
listen = "{enrollment.listen}"
advertise = "{enrollment.advertise}"

[analysis]
default_rules = true          # the shipped ruleset (Wazuh-compatible IDs 80200-80299 and more)
rules = []                    # your own rule files or folders, e.g. ["rules/local_rules.xml"]
lists_root = ""               # where relative <list> paths resolve (e.g. /var/ossec)

[outputs]
alerts_file = true            # alerts/alerts.json, Wazuh alerts.json shape, JSON lines
alerts_file_min_level = 0     # only alerts at this level or above go to the file
alerts_file_max_size = "256MiB"  # rotate the live file at this size (and daily)

[archives]                    # every analysed event, alert or not (Wazuh's logall_json)
enabled = false               # alerts/archives.json, rotated like alerts.json, gzipped

[console]                     # the web console, HTTPS (users: trailwarden admin user add)
enabled = true
listen = "{console_listen or f"0.0.0.0:{DEFAULT_CONSOLE_PORT}"}"
# tls_cert = "/etc/ssl/console.pem"   # your organisation's certificate (default: one from pki/ca)
# tls_key = "/etc/ssl/console.key"    # its key, mode 0600
session_ttl = "12h"           # a login lasts at most this long
idle_timeout = "1h"           # and ends when unused this long

[store]
# retention and raw-event archive; see docs/CONFIGURATION.md
{store_line}
"""
