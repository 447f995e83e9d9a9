"""`GET /login`, `POST /login`, `POST /logout`, and `GET /api/me` (who is logged in).

The login form is protected from cross-site posting by a double-submit token: `GET /login` sets
a random value in a ``__Host-`` cookie and in a hidden field, and `POST /login` must bring both,
equal. Failed logins are throttled per client address and per user name (ratelimit.py); a
wrong password and an unknown user answer alike, in the same time. Every success, failure,
throttling and logout is audited with the user's name and address.
"""

from __future__ import annotations

import logging
import re
import secrets
from html import escape
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from trailwarden.manager.console.forms import read_form
from trailwarden.manager.console.pages import render_page
from trailwarden.manager.console.roles import (
    audit_action,
    client_address,
    console_context,
    current_user,
)
from trailwarden.manager.console.sessions import SESSION_COOKIE, tokens_match
from trailwarden.manager.users.policy import NAME_PATTERN

log = logging.getLogger(__name__)

LOGIN_COOKIE = "__Host-tw_login"
LOGIN_COOKIE_SECONDS = 3600
"""A login form is good for an hour."""
_LOGIN_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/me", me, methods=["GET"]),
    ]


def safe_next(target: str) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/login"):
        return "/"
    if any(ord(c) < 33 for c in target):
        return "/"
    return target


async def login_form(request: Request) -> Response:
    return _form_page(request, safe_next(request.query_params.get("next", "/")), "", 200)


def _form_page(
    request: Request, next_path: str, message: str, status: int, *, retry_after: int = 0
) -> Response:
    # Reuse the token already in the browser: a second /login load (another tab, or the
    # redirect of a favicon request) must not invalidate the form shown in the first.
    existing = request.cookies.get(LOGIN_COOKIE, "")
    token = existing if _LOGIN_TOKEN.match(existing) else secrets.token_urlsafe(32)
    notice = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    body = (
        '<main class="login"><h1>TrailWarden</h1>'
        f"{notice}"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="csrf_token" value="{token}">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<label>User name <input name="username" autocomplete="username" required '
        "autofocus></label>"
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Log in</button>'
        "</form></main>"
    )
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    response = render_page(request, "Log in", body, status_code=status, headers=headers)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_COOKIE_SECONDS,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


async def login(request: Request) -> Response:
    context = console_context(request)
    form = await read_form(request)
    address = client_address(request)
    name = form.get("username", "").strip().lower()  # names are lower-case (users/policy.py)
    password = form.get("password", "")
    next_path = safe_next(form.get("next", "/"))
    shown = name if NAME_PATTERN.match(name) else "?"
    actor = f"console:{shown}"
    cookie_token = request.cookies.get(LOGIN_COOKIE, "")
    form_token = form.get("csrf_token", "")
    if not cookie_token or not form_token or not tokens_match(form_token, cookie_token):
        await run_in_threadpool(
            context.audit,
            actor,
            "console.csrf_refused",
            f"POST /login: login form token missing or not matching its cookie address={address}",
        )
        return _form_page(
            request,
            next_path,
            "This login form has expired or did not come from this console; try again.",
            403,
        )
    keys = (f"addr:{address}", f"user:{name.lower()[:64]}")
    wait = context.limiter.retry_after(keys)
    if wait:
        if context.limiter.first_refusal(keys):
            await run_in_threadpool(
                context.audit,
                actor,
                "console.login_throttled",
                f"too many failed logins; retry in {wait}s (audited once per 5 minutes for "
                f"this address and name) address={address}",
            )
        return _form_page(
            request,
            next_path,
            f"Too many failed logins. Try again in {wait} seconds.",
            429,
            retry_after=wait,
        )
    user = await run_in_threadpool(context.users.authenticate, name, password)
    if user is None:
        log.warning("stage=console login refused user=%s address=%s", shown, address)
        context.limiter.failed(keys)
        await run_in_threadpool(context.audit, actor, "console.login_failed", f"address={address}")
        return _form_page(request, next_path, "Wrong user name or password.", 401)
    log.info("stage=console login user=%s role=%s address=%s", user.name, user.role, address)
    context.limiter.forget(keys[1])
    previous = request.cookies.get(SESSION_COOKIE, "")
    session = await run_in_threadpool(context.login_sessions.start, user, address, previous)
    await run_in_threadpool(
        context.audit,
        f"console:{user.name}",
        "console.login",
        f"role={user.role} address={address}",
    )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=session.max_age_seconds,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


async def logout(request: Request) -> Response:
    context = console_context(request)
    session_id = str(request.state.session_id)
    await run_in_threadpool(context.login_sessions.end, session_id)
    await audit_action(request, "console.logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


async def me(request: Request) -> Response:
    """The logged-in user, for scripts: ``{"name": …, "role": "viewer"|"admin"}``."""
    user = current_user(request)
    return JSONResponse({"name": user.name, "role": user.role})
