"""`build_app(ctx)`: the console's Starlette application.

Routes: the login and logout (login.py), ``/static`` (files shipped in the package, nothing
fetched from anywhere), the admin agent actions (agents_api.py) and the pages and API of
`views.routes(ctx)`. Every request first passes `ConsoleGuard`. Our errors become HTTP answers
here, at the console's edge: JSON under ``/api/``, plain text for pages.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from trailwarden.common import errors
from trailwarden.manager.console import agents_api, login, views
from trailwarden.manager.console.context import ConsoleContext
from trailwarden.manager.console.guard import ConsoleGuard

STATIC_DIR = Path(__file__).with_name("static")

_STATUS_FOR_ERROR: tuple[tuple[type[errors.TrailWardenError], int], ...] = (
    (errors.NotFoundError, 404),
    (errors.QueryError, 400),
    (errors.ConfigError, 400),
    (errors.RuleError, 400),
    (errors.AuthError, 403),
    (errors.StoreError, 503),
)


def status_for(exc: errors.TrailWardenError) -> int:
    for kind, status in _STATUS_FOR_ERROR:
        if isinstance(exc, kind):
            return status
    return 409


def build_app(ctx: ConsoleContext) -> Starlette:
    """The console for ``ctx``; ``app.state.console`` is the context (see roles.py)."""
    app = Starlette(
        routes=[
            *login.routes(),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
            *agents_api.routes(),
            *views.routes(ctx),
        ],
        middleware=[Middleware(ConsoleGuard, context=ctx)],
        exception_handlers={
            HTTPException: _http_error,
            errors.TrailWardenError: _our_error,
        },
    )
    app.state.console = ctx
    return app


def _answer(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    return PlainTextResponse(message, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = _answer(request, exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _our_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TrailWardenError)
    return _answer(request, status_for(exc), str(exc))
