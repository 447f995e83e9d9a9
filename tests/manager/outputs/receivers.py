"""Real local receivers the notification outputs are tested against.

- ``HttpReceiver``: an ``http.server`` on a loopback port, in a thread, recording every POST
  (path, headers, body) and answering what the test sets: 200, 503, 422 for one alert, ...;
  ``close()`` shuts the port (connection refused) and ``open()`` takes the same port again.
- ``SmtpReceiver``: a small SMTP server (``socketserver``) speaking EHLO, STARTTLS (with a
  certificate from a test CA), AUTH PLAIN, MAIL, RCPT, DATA and QUIT — what ``smtplib``
  uses — recording each message and whether TLS was on when credentials and data came.
"""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Request], int]
"""What the receiver answers to a request (an HTTP status)."""


class HttpReceiver:
    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.requests: list[Request] = []
        """Every request that reached the receiver, whatever it answered."""
        self.accepted: list[Request] = []
        """Requests answered with a 2xx."""
        self.answer: Answer = lambda request: 200
        self.tls: ssl.SSLContext | None = None
        """Set before ``open()`` to serve https with this server context."""
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hooks/secret-path-token"

    def open(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The status line and headers go out before the body, in two writes: with Nagle
            # on, the body then waits for the client's delayed ACK (40 ms a request).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Request(self.path, dict(self.headers.items()), self.rfile.read(length))
                with receiver.lock:
                    receiver.requests.append(request)
                    status = receiver.answer(request)
                    if 200 <= status < 300:
                        receiver.accepted.append(request)
                payload = b"ok" if status < 300 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted_bodies(self) -> list[Any]:
        with self.lock:
            return [r.json() for r in self.accepted]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Any]:
        """The bodies of the first ``count`` accepted requests, waiting for them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = self.accepted_bodies()
            if len(bodies) >= count:
                return bodies
            time.sleep(0.02)
        raise AssertionError(f"{len(self.accepted_bodies())} of {count} requests accepted")


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


# ---- SMTP --------------------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    tls: bool
    """The data came over TLS."""


@dataclass
class SmtpLog:
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    """(user, password, over TLS) of each AUTH."""
    commands: list[str] = field(default_factory=list)


class SmtpReceiver:
    """``offer_starttls=False`` plays a server without TLS (the output must refuse it)."""

    def __init__(self, context: ssl.SSLContext, *, offer_starttls: bool = True) -> None:
        self.log = SmtpLog()
        log = self.log
        lock = threading.Lock()

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    self._converse()
                finally:
                    if isinstance(self.request, ssl.SSLSocket):
                        self.rfile.close()
                        self.wfile.close()
                        self.request.close()

            def _converse(self) -> None:
                tls = False
                sender, recipients = "", []
                self._send("220 test-smtp ready")
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    command = line.decode().rstrip("\r\n")
                    verb = command.split(" ", 1)[0].upper()
                    with lock:
                        log.commands.append(verb)
                    if verb in ("EHLO", "HELO"):
                        extensions = ["250-test-smtp", "250-AUTH PLAIN"]
                        if offer_starttls and not tls:
                            extensions.append("250-STARTTLS")
                        extensions.append("250 8BITMIME")
                        self._send("\r\n".join(extensions))
                    elif verb == "STARTTLS" and offer_starttls and not tls:
                        self._send("220 go ahead")
                        self.request = context.wrap_socket(self.request, server_side=True)
                        self.rfile = self.request.makefile("rb")
                        self.wfile = self.request.makefile("wb")
                        tls = True
                    elif verb == "AUTH":
                        _, user, password = base64.b64decode(command.split()[2]).split(b"\0")
                        with lock:
                            log.logins.append((user.decode(), password.decode(), tls))
                        self._send("235 ok")
                    elif verb == "MAIL":
                        sender = command.split(":", 1)[1].strip().strip("<>").split(">")[0]
                        recipients = []
                        self._send("250 ok")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                        self._send("250 ok")
                    elif verb == "DATA":
                        self._send("354 end with .")
                        data = b""
                        while True:
                            chunk = self.rfile.readline()
                            if chunk in (b".\r\n", b""):
                                break
                            data += chunk
                        with lock:
                            log.mails.append(Mail(sender, recipients, data, tls))
                        self._send("250 queued")
                    elif verb == "QUIT":
                        self._send("221 bye")
                        return
                    elif verb in ("RSET", "NOOP"):
                        self._send("250 ok")
                    else:
                        self._send("502 not implemented")

            def _send(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")
                self.wfile.flush()

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
