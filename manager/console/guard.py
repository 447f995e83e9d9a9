"""The gate every console request passes (pure ASGI, so server-sent events stream through).

In order: refuse a body over the cap (413); add the security headers to every response and
drop any server banner; outside ``/login`` and ``/static/``, find the session from its cookie
(a page without one is redirected to ``/login?next=…``, an ``/api/`` call gets 401 JSON) and
put the user at ``request.state.user``; on POST, PUT, PATCH and DELETE, demand the session's
CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``) — refusals are 403 and
audited.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from trailwarden.manager.console.context import ConsoleContext, actor_for
from trailwarden.manager.console.forms import MAX_FORM_BYTES, is_form, parse_form
from trailwarden.manager.console.sessions import SESSION_COOKIE, csrf_token_for, tokens_match
from trailwarden.manager.users.base import ConsoleUser

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the console accepts (a rule test paste fits; see docs/CONSOLE.md)."""
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC_PATHS = ("/login", "/static/")
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")
"""Sent when the console is reached by a DNS name. Not for ``localhost`` (a browser would then
force HTTPS on every local development server on any port) nor IP addresses (browsers ignore it)."""
_DROPPED = frozenset({b"server", b"x-powered-by"})


class BodyTooLarge(Exception):
    """The client sent more than MAX_BODY_BYTES."""


def is_public(path: str) -> bool:
    # /favicon.ico: every browser fetches it unasked, also on the login page; sent through
    # the login redirect it would hand out a second login cookie and void the form's token.
    if path in ("/login", "/favicon.ico"):
        return True
    return any(path.startswith(p) for p in PUBLIC_PATHS if p.endswith("/"))


class ConsoleGuard:
    """ASGI middleware: size cap, security headers, session, CSRF."""

    def __init__(self, app: ASGIApp, context: ConsoleContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(
            send,
            static=scope.get("path", "").startswith("/static/"),
            hsts=wants_hsts(HTTPConnection(scope).headers.get("host", "")),
        )
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        declared = connection.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await _error(413, f"request body over {MAX_BODY_BYTES} bytes", scope, receive, send)
            return
        receive = _capped(receive, MAX_BODY_BYTES)
        path = scope["path"]
        if is_public(path):
            await self._pass(scope, receive, send)
            return
        session_id, user = await self._session(connection)
        if user is None:
            await _unauthenticated(connection, scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["user"] = user
        state["session_id"] = session_id
        state["csrf_token"] = expected = csrf_token_for(session_id)
        if scope["method"] in UNSAFE_METHODS:
            given = connection.headers.get(CSRF_HEADER, "")
            if not given and is_form(connection.headers.get("content-type", "")):
                try:
                    body = await _read_all(receive, MAX_FORM_BYTES)
                except BodyTooLarge:
                    await _error(413, f"form over {MAX_FORM_BYTES} bytes", scope, receive, send)
                    return
                given = parse_form_safely(body).get(CSRF_FIELD, "")
                receive = _replay(body, receive)
            if not given or not tokens_match(given, expected):
                reason = "missing" if not given else "incorrect"
                await run_in_threadpool(
                    self.context.audit,
                    actor_for(user.name),
                    "console.csrf_refused",
                    f"{scope['method']} {path}: CSRF token {reason} "
                    f"address={connection.client.host if connection.client else ''}",
                )
                await _error(
                    403,
                    f"CSRF token {reason}: send the page's csrf-token as the X-CSRF-Token "
                    f"header or the csrf_token form field",
                    scope,
                    receive,
                    send,
                )
                return
        await self._pass(scope, receive, send)

    async def _session(self, connection: HTTPConnection) -> tuple[str, ConsoleUser | None]:
        """(session id, its user) from the cookie; the user is None without a live session."""
        session_id = connection.cookies.get(SESSION_COOKIE, "")
        if not session_id:
            return "", None
        return session_id, await run_in_threadpool(self.context.login_sessions.resolve, session_id)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except BodyTooLarge:
            await _error(413, f"request body over {MAX_BODY_BYTES} bytes", scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket needs a live session too (checked once, at the handshake)."""
        _, user = await self._session(HTTPConnection(scope))
        if user is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)


def parse_form_safely(body: bytes) -> dict[str, str]:
    try:
        return parse_form(body)
    except Exception:  # an unreadable form simply carries no token
        return {}


async def _unauthenticated(
    connection: HTTPConnection, scope: Scope, receive: Receive, send: Send
) -> None:
    path = scope["path"]
    if path.startswith("/api/") or scope["method"] != "GET":
        await _error(
            401, "not logged in (or the session ended): log in at /login", scope, receive, send
        )
        return
    target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else "")
    response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    await response(scope, receive, send)


async def _error(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    response: Response
    if scope["path"].startswith("/api/"):
        response = JSONResponse({"error": message, "status": status}, status_code=status)
    else:
        response = PlainTextResponse(message, status_code=status)
    response.headers["cache-control"] = "no-store"
    await response(scope, receive, send)


def wants_hsts(host_header: str) -> bool:
    """HSTS for a DNS name, not for ``localhost`` or an IP address (see HSTS)."""
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    host = host.strip("[]").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def _with_security_headers(send: Send, *, static: bool, hsts: bool) -> Send:
    # Pages and API answers hold alert data: never cached. Static files may be cached but are
    # revalidated (ETag), so a new version is seen at once.
    cache_control = b"no-cache" if static else b"no-store"

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _DROPPED]
            present = {k.lower() for k, _ in headers}
            headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
            if hsts and HSTS[0] not in present:
                headers.append(HSTS)
            if b"cache-control" not in present:
                headers.append((b"cache-control", cache_control))
            message["headers"] = headers
        await send(message)

    return wrapped


def _capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises BodyTooLarge once more than ``limit`` body bytes arrived."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return wrapped


async def _read_all(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once, then the real ``receive`` (for a disconnect)."""
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped


__all__ = ["CONTENT_SECURITY_POLICY", "MAX_BODY_BYTES", "ConsoleGuard"]
