"""Who may change things: the server checks the role on every state-changing endpoint.

Pages may hide buttons from viewers, but that is a courtesy; `require_admin` is the rule.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from trailwarden.manager.console.context import ConsoleContext, actor_for
from trailwarden.manager.users.base import ConsoleUser


def current_user(request: Request) -> ConsoleUser:
    """The logged-in user (the guard has put it there for every non-public path)."""
    user = getattr(request.state, "user", None)
    if not isinstance(user, ConsoleUser):
        raise HTTPException(401, "log in first")
    return user


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def console_context(request: Request) -> ConsoleContext:
    context = request.app.state.console
    assert isinstance(context, ConsoleContext)
    return context


async def require_admin(request: Request) -> ConsoleUser:
    """The user when an admin; otherwise the refusal is audited and HTTP 403 raised."""
    user = current_user(request)
    if not user.is_admin:
        context = console_context(request)
        await run_in_threadpool(
            context.audit,
            actor_for(user.name),
            "console.denied",
            f"{request.method} {request.url.path} needs the admin role (role={user.role}) "
            f"address={client_address(request)}",
        )
        raise HTTPException(403, f"{request.method} {request.url.path}: admin role required")
    return user


Endpoint = Callable[[Request], Awaitable[Response]] | Callable[[Request], Response]


def admin_only(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """Decorate an endpoint (async, or sync: then run in the thread pool) as `require_admin`."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        await require_admin(request)
        if inspect.iscoroutinefunction(endpoint):
            return await endpoint(request)  # type: ignore[no-any-return]
        result: Any = await run_in_threadpool(endpoint, request)
        return result  # type: ignore[no-any-return]

    return wrapper


async def audit_action(request: Request, action: str, detail: str = "", target: str = "") -> None:
    """Audit a console action of the logged-in user (actor ``console:<name>``, its address)."""
    user = current_user(request)
    text = f"{detail} address={client_address(request)}".strip()
    await run_in_threadpool(
        console_context(request).audit, actor_for(user.name), action, text, target
    )
