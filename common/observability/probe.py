"""Ask a running manager or agent how it is, from a shell on the same host (``… status``)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trailwarden.common.observability.config import MetricsConfig

PROBE_TIMEOUT_SECONDS = 5.0
READY = "ready"
NOT_READY = "not ready"
UNREACHABLE = "not answering"


def probe_readyz(config: MetricsConfig) -> tuple[str, str]:
    """(state, reason) from the process's /readyz; state is READY, NOT_READY or UNREACHABLE."""
    host, port = config.host_port
    if host in ("0.0.0.0", "::", ""):  # bound to every address: ask on loopback
        host = "127.0.0.1"
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            body = json.loads(response.read() or b"{}")
            return READY, str(body.get("reason", ""))
    except urllib.error.HTTPError as exc:
        try:
            reason = str(json.loads(exc.read() or b"{}").get("reason", exc.reason))
        except ValueError:
            reason = str(exc.reason)
        finally:
            exc.close()
        return (NOT_READY if exc.code == 503 else UNREACHABLE), reason
    except (OSError, ValueError) as exc:
        return UNREACHABLE, f"{url}: {exc}"


def add_status_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    help_text: str,
    home_help: str,
    handler: Callable[[argparse.Namespace], int],
) -> None:
    """``… status --home DIR [--json]`` for the manager and the agent alike."""
    status = sub.add_parser("status", help=help_text)
    status.add_argument("--home", required=True, type=Path, help=home_help)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=handler)


def readiness_section(config: MetricsConfig) -> dict[str, Any] | None:
    """The ``readiness`` part of a status report; None when ``[metrics]`` is off."""
    if not config.enabled:
        return None
    state, reason = probe_readyz(config)
    return {"state": state, "reason": reason, "listen": config.listen}


def readiness_line(section: dict[str, Any] | None, width: int) -> str:
    label = "readiness:".ljust(width)
    if section is None:
        return f"  {label}[metrics] not configured (no /readyz to ask)"
    return f"  {label}{section['state']} ({section['reason']})"
