"""Ask a running manager or agent how it is, from a shell on the same host (``… status``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

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
