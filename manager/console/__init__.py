"""The web console: an HTTPS Starlette app served by uvicorn inside `trailwarden manager run`.

- `context.py`  what every page and API endpoint gets (store, registry, users, audit, ...)
- `app.py`      `build_app(ctx)`: routes, the guard, static files
- `guard.py`    the ASGI middleware every request passes: size cap, security headers,
                session → ``request.state.user``, CSRF on state-changing requests
- `sessions.py` login sessions (random 256-bit ids, only their hash stored) and CSRF tokens
- `login.py`    `GET/POST /login`, `POST /logout`; `ratelimit.py` throttles failed logins
- `roles.py`    `require_admin(request)`; `forms.py` request bodies; `pages.py` HTML shell
- `agents_api.py` admin-only agent actions (revoke) over the same code as the Admin API
- `serving.py`  uvicorn on its own thread and event loop, TLS from common/tls.py
- `views/`      the pages and the JSON API (`views.routes(ctx)`)
"""
