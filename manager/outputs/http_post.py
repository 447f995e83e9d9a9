"""POSTing JSON to an HTTP receiver (webhook, Slack) and what its answer means for delivery.

http.client from the standard library: one keep-alive connection per delivery page, no
redirects followed (a POST redirected elsewhere is a wrong ``url``, fixed by the operator).

The answer decides between three outcomes:

- **2xx**: delivered;
- **refused** (``Refused``): 4xx that are about this one request — 400, 409, 413, 415, 422 and
  any other 4xx not listed below. Replaying it would be refused forever and would hold every
  later alert behind it, so the alert is logged (id and rule, never its content), counted
  (``refused``) and passed;
- **retry** (``OutputError``): 5xx, 408 and 429 (the receiver is busy), 401, 403, 404, 405 and
  407 (the receiver or its credentials are wrong: every alert would be refused, so nothing is
  dropped and the operator is told), 3xx, and connection errors and time-outs. The delivery
  loop replays from its cursor with a growing wait.

Only the scheme, host and port of the URL are ever logged or put in an error: a Slack webhook
URL is a credential, and header values (tokens) are never logged at all.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from trailwarden.common.errors import ConfigError, OutputError, PkiError
from trailwarden.common.tls import https_client_context
from trailwarden.manager.outputs.config import HttpOutput as HttpOutputConfig
from trailwarden.manager.outputs.config import read_secret_file, resolve_path, url_problem
from trailwarden.manager.outputs.remote import Refused, RemoteOutput

HOLD_STATUSES = frozenset({401, 403, 404, 405, 407, 408, 429})
"""4xx answers retried, not passed: they say the receiver (or our access to it) is not right
now usable, not that this alert is wrong."""


MAX_ANSWER_BYTES = 64 * 1024
"""Of a receiver's answer, read at most this much (keep-alive needs it read; nothing uses it)."""


class HttpReceiver:
    """One configured receiver: its URL, extra headers, time-out and TLS trust."""

    def __init__(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        timeout_seconds: float,
        ca_file: Path | None = None,
    ) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = dict(headers)
        self._timeout = timeout_seconds
        self._context: ssl.SSLContext | None = (
            https_client_context(ca_file) if self._https else None
        )  # PkiError naming ca_file when it cannot be used
        self.where = f"{parts.scheme}://{self._host}:{self._port}"
        """What logs and errors name: never the path (it may hold a token) or a header value."""

    @contextmanager
    def connection(self) -> Iterator[Poster]:
        """A connection for one delivery page, closed after it."""
        if self._https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            yield Poster(self, conn)
        finally:
            conn.close()


class Poster:
    """POSTs over one connection; see the module docstring for the outcomes."""

    def __init__(self, receiver: HttpReceiver, conn: http.client.HTTPConnection) -> None:
        self._receiver = receiver
        self._conn = conn

    def post_json(self, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> int:
        """POST ``body`` as application/json; the 2xx status, or Refused, or OutputError."""
        receiver = self._receiver
        sent = {**receiver.headers, **dict(headers), "Content-Type": "application/json"}
        try:
            self._conn.request("POST", receiver.target, body=body, headers=sent)
            response = self._conn.getresponse()
            response.read(MAX_ANSWER_BYTES)  # what the receiver says is not used
            if not response.isclosed():  # a longer answer: start afresh rather than read it
                self._conn.close()
            status, reason = response.status, response.reason
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise OutputError(
                f"receiver {receiver.where}: {type(exc).__name__}: {exc or 'no answer'}"
            ) from exc
        if 200 <= status < 300:
            return status
        if 400 <= status < 500 and status not in HOLD_STATUSES:
            raise Refused(f"HTTP {status} {reason}")
        raise OutputError(f"receiver {receiver.where}: HTTP {status} {reason}")


class HttpOutput(RemoteOutput[Poster]):
    """Base of the webhook and Slack outputs: one connection per delivery page."""

    def __init__(
        self, config: HttpOutputConfig, home: Path, headers: Sequence[tuple[str, str]] = ()
    ):
        super().__init__()
        self.name = config.name
        self.selection = config.selection
        url = config.url
        if config.url_file:
            where = f"output {config.name}: url_file"
            url = read_secret_file(home, config.url_file, where).strip()
            problem = url_problem(url)
            if problem:
                raise ConfigError(f"{where} {config.url_file}: {problem}")
        try:
            self.receiver = HttpReceiver(
                url,
                headers=headers,
                timeout_seconds=config.timeout_seconds,
                ca_file=resolve_path(home, config.ca_file) if config.ca_file else None,
            )
        except PkiError as exc:
            raise ConfigError(f"output {config.name}: ca_file: {exc}") from exc
        self.where = self.receiver.where

    def connect(self) -> AbstractContextManager[Poster]:
        return self.receiver.connection()
