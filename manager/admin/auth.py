"""Admin authorisation: every Admin RPC runs only for a peer holding an admin certificate.

gRPC's aio interceptors cannot see the peer certificate, so each servicer method is wrapped
with ``@admin_rpc``; the wrapper resolves the caller from the TLS peer certificate (never from a
message), aborts with PERMISSION_DENIED for anyone else, and maps our errors to status codes
(the servicers are the only place that does). The caller's identity is passed on as
``calling_admin()`` (a context variable: each call runs in its own task) for the audit log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import grpc

from trailwarden.common import errors
from trailwarden.manager.link.peer import PeerKind, peer_identity

log = logging.getLogger(__name__)

_STATUS_FOR_ERROR: tuple[tuple[type[errors.TrailWardenError], grpc.StatusCode], ...] = (
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.QueryError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.RuleError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.AuthError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.StoreError, grpc.StatusCode.UNAVAILABLE),
)

F = TypeVar("F", bound=Callable[..., Any])

_CALLING_ADMIN: ContextVar[str] = ContextVar("calling_admin", default="")


def calling_admin() -> str:
    """The admin (from its certificate) on whose behalf the current Admin RPC runs."""
    return _CALLING_ADMIN.get()


def status_for(exc: errors.TrailWardenError) -> grpc.StatusCode:
    for kind, code in _STATUS_FOR_ERROR:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


MAX_STATUS_MESSAGE_CHARS = 2000
"""An error message is cut to this length: messages quote the offending value, and gRPC drops a
response whose status message passes its 16 KiB metadata limit (an 8 MiB group name came back
as RESOURCE_EXHAUSTED "Stream removed" instead of the real error)."""


def status_message(exc: BaseException) -> str:
    """``str(exc)``, cut to ``MAX_STATUS_MESSAGE_CHARS``."""
    text = str(exc)
    if len(text) <= MAX_STATUS_MESSAGE_CHARS:
        return text
    return text[:MAX_STATUS_MESSAGE_CHARS] + f"... ({len(text)} characters)"


async def _authorise(context: grpc.aio.ServicerContext[Any, Any], method: str) -> str:
    identity = peer_identity(context)
    if identity is None or identity.kind is not PeerKind.ADMIN:
        who = "unauthenticated peer" if identity is None else f"{identity.kind.value} {identity.id}"
        log.warning("stage=admin denied method=%s peer=%s", method, who)
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED, f"{method} needs an admin certificate ({who})"
        )
    assert identity is not None
    return identity.id


def admin_rpc(method: F) -> F:
    """Wrap a unary async Admin method: admin-only, errors mapped to status codes."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        _CALLING_ADMIN.set(await _authorise(context, method.__name__))
        try:
            return await method(self, request, context)
        except errors.TrailWardenError as exc:
            await context.abort(status_for(exc), status_message(exc))

    return wrapper  # type: ignore[return-value]


def admin_stream_rpc(
    method: Callable[..., AsyncIterator[Any]],
) -> Callable[..., AsyncIterator[Any]]:
    """Like ``admin_rpc`` for server-streaming methods (async generators)."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        _CALLING_ADMIN.set(await _authorise(context, method.__name__))
        try:
            async for item in method(self, request, context):
                yield item
        except errors.TrailWardenError as exc:
            await context.abort(status_for(exc), status_message(exc))

    return wrapper
