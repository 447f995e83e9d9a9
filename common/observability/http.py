"""The operators' HTTP endpoint of the manager and the agent: /metrics, /healthz, /readyz.

- ``/metrics``: Prometheus text format from a ``prometheus_client`` registry.
- ``/healthz``: 200 while the process serves HTTP at all (liveness).
- ``/readyz``: 200 when the readiness check passes, else 503 with the reason (the manager: store
  reachable and rules loaded; the agent: spool usable and linked to a manager).

Unauthenticated, read-only and small: GET and HEAD only, no request body is read, request lines
and headers are capped by the standard library, responses carry no secrets (counters and
states). Bind it to loopback (the default for a bare port) or a monitoring network.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from trailwarden.common.observability.config import MetricsConfig

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], tuple[bool, str]]
"""() -> (ready, reason); the reason says what is wrong (or what is fine)."""

REQUEST_TIMEOUT_SECONDS = 10.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "trailwarden"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = generate_latest(self.server.registry)
            except Exception as exc:  # a collector bug must not take the endpoint down
                log.exception("stage=metrics collecting failed")
                self._send(500, "text/plain; charset=utf-8", f"collect failed: {exc}\n", send_body)
                return
            self._send(200, CONTENT_TYPE_LATEST, body, send_body)
        elif path == "/healthz":
            self._send(200, "application/json", '{"status": "alive"}\n', send_body)
        elif path == "/readyz":
            try:
                ready, reason = self.server.ready_check()
            except Exception as exc:
                ready, reason = False, f"readiness check failed: {type(exc).__name__}: {exc}"
            status = {"status": "ready" if ready else "not ready", "reason": reason}
            self._send(
                200 if ready else 503, "application/json", json.dumps(status) + "\n", send_body
            )
        else:
            self._send(404, "text/plain; charset=utf-8", "not found\n", send_body)

    def _send(self, code: int, content_type: str, body: str | bytes, send_body: bool) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("stage=metrics %s %s", self.address_string(), format % args)


class _Server(HTTPServer):
    """One thread answers every request: scrapes are small and rare, collectors may read the
    database through a per-thread connection (a thread per request would open one each time),
    and a slow client is cut off after REQUEST_TIMEOUT_SECONDS."""

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, ready_check: ReadyCheck
    ) -> None:
        self.registry = registry
        self.ready_check = ready_check
        super().__init__(address, _Handler)


class ObservabilityServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on their own port, served from a thread."""

    def __init__(
        self, config: MetricsConfig, registry: CollectorRegistry, ready_check: ReadyCheck
    ) -> None:
        host, port = config.host_port
        self._server = _Server((host, port), registry, ready_check)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("stage=metrics serving /metrics /healthz /readyz on port %d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
