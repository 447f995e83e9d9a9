"""The console's pages and JSON API (`routes(ctx)`); this first version is only the home page.

The console-views work replaces this module with the overview, alerts, agents and rules pages.
What the pages can rely on: ``request.state.user`` (a `ConsoleUser`), `pages.render_page` (head
with the CSRF meta tag and the stylesheet), `pages.logout_form` (the ``form.logout`` button the
browser test clicks), `roles.require_admin` / `roles.admin_only` for every change, and
`roles.audit_action` to audit it.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from trailwarden.manager.console.context import ConsoleContext
from trailwarden.manager.console.pages import logout_form, render_page
from trailwarden.manager.console.roles import current_user


def routes(ctx: ConsoleContext) -> list[BaseRoute]:
    """Routes served behind the login (the guard has checked the session already)."""

    async def home(request: Request) -> Response:
        user = current_user(request)
        body = (
            '<header class="bar"><span class="brand">TrailWarden</span>'
            f'<span class="who">Logged in as <strong id="user-name">{escape(user.name)}'
            f'</strong> (<span id="user-role">{escape(user.role)}</span>)</span>'
            f"{logout_form(request)}</header>"
            f"<main><h1>Manager {escape(ctx.config.name)}</h1>"
            "<p>The console's pages arrive here.</p></main>"
        )
        return render_page(request, "Home", body)

    return [Route("/", home, methods=["GET"])]
