"""``[metrics]`` in manager.toml and agent.toml: where /metrics, /healthz and /readyz listen.

Off unless configured. ``listen = "127.0.0.1:9750"``; a bare port (``"9750"`` or ``9750``) means
loopback, so exposing the endpoints beyond the host is always an explicit choice. Port 0 binds a
free port (tests); the bound port is logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from trailwarden.common.tomlconfig import Section

DEFAULT_MANAGER_METRICS_PORT = 9750
DEFAULT_AGENT_METRICS_PORT = 9751


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = ""
    """``host:port`` of the metrics/health HTTP endpoint; '' = off."""

    @property
    def enabled(self) -> bool:
        return bool(self.listen)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


def parse_metrics_section(top: Section) -> MetricsConfig:
    """Read ``[metrics]`` from the top-level section of a config file."""
    section = top.section("metrics")
    raw = section.raw("listen", "")
    section.done()
    if raw in ("", None):
        return MetricsConfig()
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise section.error("listen", 'expected "host:port" or a port number')
    text = str(raw).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    host = host or "127.0.0.1"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise section.error("listen", f"{text!r}: the port must be a number from 0 to 65535")
    if any(c.isspace() for c in host):
        raise section.error("listen", f"{text!r}: not a host name or address")
    return MetricsConfig(f"{host}:{int(port_text)}")
