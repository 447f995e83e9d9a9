"""New alerts as they are stored: server-sent events over the store's ``follow``.

``GET /api/alerts/live`` with the table's filters answers ``text/event-stream``. Each alert is
one ``alert`` event whose ``id:`` is the store's follow cursor, so when the connection drops the
browser's EventSource reconnects (after ``retry`` ms) sending ``Last-Event-ID`` and the stream
continues exactly after the last alert it delivered — nothing missed, nothing twice. A new
stream (no ``Last-Event-ID``) starts from now. A comment line every ``KEEPALIVE_SECONDS`` keeps
proxies from closing an idle stream and lets the server notice a browser that went away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from trailwarden.common.errors import QueryError, StoreError
from trailwarden.manager.console.views.alerts import summary
from trailwarden.manager.console.views.common import ViewContext, blocking
from trailwarden.manager.console.views.params import parse_console_query
from trailwarden.manager.store.base import AlertQuery

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""How often the stream looks for new alerts when the last look found none."""
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
"""What the browser waits before reconnecting."""
LIVE_PAGE = 200
"""Alerts read per look."""
MAX_FAILURES = 20


def routes(ctx: ViewContext) -> list[BaseRoute]:
    async def live(request: Request) -> Response:
        # Live follows arrivals; the range picker does not bound it (new alerts are "now").
        cq = parse_console_query(request.query_params, timed=False)
        after = _last_event_id(request.headers.get("last-event-id", ""))
        q = cq.alert_query(LIVE_PAGE)
        return StreamingResponse(
            _stream(ctx, q, after, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return [Route("/api/alerts/live", live)]


def _last_event_id(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise QueryError(f"bad Last-Event-ID {text[:40]!r}: a follow cursor is a number")
    return int(text)


async def _stream(
    ctx: ViewContext, q: AlertQuery, after: int | None, request: Request
) -> AsyncIterator[bytes]:
    cursor = after
    yield f"retry: {RETRY_MS}\n\n".encode()
    if cursor is None:
        _, cursor = await blocking(ctx.store.follow, q, None)
    # Tell the page the stream is up (and from where), so it can show "live".
    yield b"event: ready\ndata: " + orjson.dumps({"cursor": cursor}) + b"\n\n"
    idle = 0.0
    failures = 0
    while not await request.is_disconnected():
        try:
            alerts, cursor = await blocking(ctx.store.follow, q, cursor)
            failures = 0
        except StoreError as exc:
            failures += 1
            log.warning("stage=console live stream store read failed (%d): %s", failures, exc)
            if failures >= MAX_FAILURES:
                yield b"event: failed\ndata: " + orjson.dumps({"error": str(exc)}) + b"\n\n"
                return
            alerts = []
        if alerts:
            idle = 0.0
            for alert in alerts:
                yield (
                    f"id: {alert.cursor}\nevent: alert\ndata: ".encode()
                    + orjson.dumps(summary(alert))
                    + b"\n\n"
                )
            continue
        await asyncio.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
        if idle >= KEEPALIVE_SECONDS:
            idle = 0.0
            yield b": keepalive\n\n"
