"""The HTML shell of console pages: the stylesheet, the CSRF meta tag, escaping.

No inline script and no inline style anywhere (the Content-Security-Policy forbids both):
scripts and styles are files under /static.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse

CSRF_META = "csrf-token"
"""``<meta name="csrf-token" content="…">``: scripts send it back as ``X-CSRF-Token``."""


def csrf_token(request: Request) -> str:
    """The CSRF token of the request's session ('' before login)."""
    return str(getattr(request.state, "csrf_token", ""))


def csrf_meta(request: Request) -> str:
    """The meta tag carrying the session's CSRF token, for a page's <head>."""
    return f'<meta name="{CSRF_META}" content="{escape(csrf_token(request))}">'


def csrf_field(request: Request) -> str:
    """A hidden form field with the session's CSRF token, for an HTML <form method=post>."""
    return f'<input type="hidden" name="csrf_token" value="{escape(csrf_token(request))}">'


def logout_form(request: Request) -> str:
    """The logout button (a POST form: logging out is a change, so it carries the token)."""
    return (
        '<form class="logout" method="post" action="/logout">'
        f'{csrf_field(request)}<button type="submit">Log out</button></form>'
    )


def render_page(
    request: Request,
    title: str,
    body: str,
    *,
    status_code: int = 200,
    scripts: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A full HTML page around ``body`` (already escaped HTML) with the console's head."""
    script_tags = "".join(f'<script src="{escape(src)}" defer></script>' for src in scripts)
    html = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{csrf_meta(request)}"
        f"<title>{escape(title)} · TrailWarden</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/console.css">'
        f"{script_tags}</head><body>{body}</body></html>\n"
    )
    return HTMLResponse(html, status_code=status_code, headers=headers)
