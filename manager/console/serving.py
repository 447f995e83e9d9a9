"""The console's HTTPS server: uvicorn on its own thread and event loop.

Its own loop keeps the console's work (page rendering, Starlette's thread pool for blocking
store calls) off the loop that serves the agents' gRPC streams. The listening socket is bound
in `start()`, so a port in use fails the manager's start with a clear error, and port 0 is
reported as the port actually bound. TLS: the organisation's certificate from ``[console]``,
else the manager's own server certificate (issued by its CA for its server names).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import uvicorn

from trailwarden.common import tls
from trailwarden.common.errors import ConfigError
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.console.app import build_app
from trailwarden.manager.console.context import ConsoleContext

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 20.0
GRACEFUL_SHUTDOWN_SECONDS = 2
"""Open connections (a live-alert stream) get this long to finish when the manager drains."""
MAX_CONNECTIONS = 256
"""Concurrent HTTP connections; more get 503 rather than exhausting the manager."""


class _IdleConnectionsFilter(logging.Filter):
    """Drop uvicorn's "Cancel 0 running task(s), timeout graceful shutdown exceeded" ERROR.

    A browser's idle keep-alive TLS connection outlives the graceful shutdown (the TLS close
    waits for the browser's reply); no request was running, nothing was cut, and an ERROR line
    at every manager stop would teach admins to ignore errors. With tasks cancelled it stays.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "Cancel %s running task(s), timeout graceful shutdown exceeded"
            and record.args == (0,)
        )


logging.getLogger("uvicorn.error").addFilter(_IdleConnectionsFilter())


def certificate_files(config: ManagerConfig) -> tuple[Path, Path]:
    """(certificate chain, key) the console serves: `[console] tls_cert/tls_key` or pki/server.*"""
    console = config.console
    if console.tls_cert:
        return config.resolve(console.tls_cert), config.resolve(console.tls_key)
    return config.pki_dir / "server.pem", config.pki_dir / "server.key"


def bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and accepted sockets inherit it. With proto 0 every response waited for
    # the client's delayed ACK: 40 ms on each request (bench/console.py).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"[console] listen {listen!r}: cannot bind: {exc}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ConsoleServer:
    """Serves `build_app(context)` over HTTPS until `stop()`."""

    def __init__(self, context: ConsoleContext) -> None:
        self.context = context
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def reload_certificate(self) -> None:
        """Serve the certificate files as they are now to new connections (after `manager
        cert renew`); a pair that does not load is logged and the old one kept. Done on the
        console's own loop: its TLS handshakes run there, and an SSLContext must not change
        under a handshake running on another thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._reload_certificate_now)

    def _reload_certificate_now(self) -> None:
        if self._ssl_context is None:
            return
        cert, key = certificate_files(self.context.config)
        try:
            self._ssl_context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            log.warning("stage=console certificate %s not reloaded: %s", cert, exc)
            return
        log.info("stage=console certificate %s reloaded", cert)

    def start(self) -> int:
        """Bind, start serving, return the port (blocks until uvicorn is accepting)."""
        config = self.context.config
        cert, key = certificate_files(config)
        ssl_context = self._ssl_context = tls.https_server_context(cert, key)
        sock = bind(config.console.listen)
        self.port = int(sock.getsockname()[1])

        def ssl_factory(_config: uvicorn.Config, _default: Any) -> ssl.SSLContext:
            return ssl_context

        server_config = uvicorn.Config(
            build_app(self.context),
            lifespan="off",
            http="h11",
            ws="none",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,  # the client address is the peer's, never a header's
            limit_concurrency=MAX_CONNECTIONS,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            ssl_context_factory=ssl_factory,
        )
        server = uvicorn.Server(server_config)
        self._server = server

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve(sockets=[sock])

        def run() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:  # reported by start() or stop()
                self._failure = exc
                log.exception("stage=console server stopped with an error")
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="console", daemon=True)
        self._thread.start()
        deadline = START_TIMEOUT_SECONDS
        waited = 0.0
        while not server.started and self._thread.is_alive() and waited < deadline:
            threading.Event().wait(0.02)
            waited += 0.02
        if not server.started:
            self.stop()
            raise ConfigError(
                f"[console] the HTTPS server on {config.console.listen} did not start: "
                f"{self._failure or 'timed out'}"
            )
        log.info(
            "stage=start console https on %s (port %d) certificate=%s",
            config.console.listen,
            self.port,
            cert,
        )
        return self.port

    def stop(self) -> None:
        """Stop accepting, give open requests a moment, join the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(GRACEFUL_SHUTDOWN_SECONDS + 10)
            self._thread = None
