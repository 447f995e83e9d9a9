"""The console's pages: HTML shells that load the page's script, which calls the JSON API.

No data is rendered into the HTML (so nothing attacker-controlled reaches markup on the server),
and no script is inline: the console's Content-Security-Policy is ``default-src 'self'``. The
shell carries the CSRF token in ``<meta name="csrf-token">`` for the scripts' POSTs (the
console's own ``pages.csrf_meta``, and its ``logout_form``), and the
user's name and role in ``data-`` attributes so the page can hide what a viewer may not do (the
server refuses it anyway).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from trailwarden.manager.console.pages import csrf_meta, logout_form
from trailwarden.manager.console.views.common import is_admin, user_name

FAVICON = Path(__file__).resolve().parent.parent / "static" / "img" / "favicon.svg"
PAGES = {
    "overview": ("/", "Overview"),
    "alerts": ("/alerts", "Alerts"),
    "agents": ("/agents", "Agents"),
    "rules": ("/rules", "Rules"),
}
"""Page name → (path, title), in navigation order."""
_SCRIPTS = {
    "overview": ("vendor/echarts/echarts.min.js", "js/charts.js", "js/overview.js"),
    "alerts": ("js/alerts.js",),
    "alert": ("js/alert.js",),
    "agents": ("js/agents.js",),
    "rules": ("js/rules.js",),
}


def shell(request: Request, page: str, title: str) -> Response:
    nav = "".join(
        f'<a href="{path}"{" aria-current=page" if name == page.removesuffix("-detail") else ""}>'
        f"{escape(label)}</a>"
        for name, (path, label) in PAGES.items()
    )
    scripts = "".join(
        f'<script src="/static/{src}" defer></script>' for src in ("js/console.js", *_SCRIPTS[page])
    )
    role = "admin" if is_admin(request) else "viewer"
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{csrf_meta(request)}
<title>{escape(title)} · TrailWarden</title>
<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/css/console.css">
{scripts}
</head>
<body data-page="{page}" data-user="{escape(user_name(request))}" data-role="{role}">
<header class="top"><span class="brand">TrailWarden</span><nav>{nav}</nav>
<span class="who"><span id="who-name"></span> <span id="who-role" class="role"></span>
{logout_form(request)}
</span></header>
<main id="main"><p class="state loading">Loading…</p></main>
<footer class="foot">Times in UTC.
<a href="/static/vendor/NOTICES.txt">Third-party notices</a></footer>
</body></html>"""
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    async def overview(request: Request) -> Response:
        return shell(request, "overview", "Overview")

    async def alerts(request: Request) -> Response:
        return shell(request, "alerts", "Alerts")

    async def alert(request: Request) -> Response:
        return shell(request, "alert", "Alert")

    async def agents(request: Request) -> Response:
        return shell(request, "agents", "Agents")

    async def rules(request: Request) -> Response:
        return shell(request, "rules", "Rules")

    async def favicon(request: Request) -> Response:
        return FileResponse(FAVICON, media_type="image/svg+xml")

    return [
        Route("/favicon.ico", favicon),
        Route("/", overview),
        Route("/alerts", alerts),
        Route("/alerts/{alert_id}", alert),
        Route("/agents", agents),
        Route("/rules", rules),
    ]
