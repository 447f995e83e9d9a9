"""The alerts table, one alert, and export of the current filter.

- ``/api/alerts``: one page, newest first, the same filters as ``admin alerts``; ``limit`` and
  the opaque ``page_token`` of the previous page (cursor paging: page 10,000 costs what page 1
  costs, and alerts arriving meanwhile do not shift the pages).
- ``/api/alerts/{id}``: the alert with its full CloudTrail record and the related alerts (same
  principal or source IP within ``RELATED_WINDOW`` either side).
- ``/api/alerts/export?format=jsonl|csv``: every alert of the filter, streamed page by page so
  memory stays flat, at most ``EXPORT_MAX_ROWS`` rows (the last line says when it stopped there).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from trailwarden.common.errors import NotFoundError, QueryError
from trailwarden.manager.console.views.common import JSONResponse, ViewContext, blocking
from trailwarden.manager.console.views.params import parse_console_query
from trailwarden.manager.store.base import AlertPage, AlertQuery, StoredAlert
from trailwarden.manager.store.query import alert_query_from_mapping

RELATED_WINDOW = timedelta(hours=1)
RELATED_SHOWN = 25
EXPORT_MAX_ROWS = 1_000_000
"""The most rows one export holds; narrow the filter (or export by day) for more."""
EXPORT_PAGE = 2_000
CSV_COLUMNS = (
    "timestamp",
    "event_time",
    "rule_id",
    "level",
    "description",
    "agent_id",
    "agent_name",
    "account",
    "region",
    "event_source",
    "event_name",
    "user",
    "source_ip",
    "event_id",
    "mitre_ids",
    "id",
)


def summary(alert: StoredAlert) -> dict[str, Any]:
    """What one table row (and one live event) carries: every indexed field, not the JSON."""
    row = {f.name: getattr(alert, f.name) for f in fields(alert) if f.name != "json"}
    row["groups"], row["mitre_ids"] = list(alert.groups), list(alert.mitre_ids)
    return row


def routes(ctx: ViewContext) -> list[BaseRoute]:
    async def alert_page(request: Request) -> Response:
        params = request.query_params
        cq = parse_console_query(params, allowed=("limit", "page_token"))
        limit = _limit(params.get("limit", ""))
        q = cq.alert_query(limit, params.get("page_token", ""))
        page: AlertPage = await blocking(ctx.store.query, q)
        return JSONResponse(
            {
                "alerts": [summary(a) for a in page.alerts],
                "next_page_token": page.next_page_token,
                "query": cq.as_json(),
            }
        )

    async def alert_detail(request: Request) -> Response:
        alert_id = request.path_params["alert_id"]
        alert = await blocking(find_alert, ctx, alert_id)
        related = await blocking(related_alerts, ctx, alert)
        document = json.loads(alert.json)
        return JSONResponse(
            {
                "alert": summary(alert),
                "rule": {
                    "id": alert.rule_id,
                    "level": alert.level,
                    "description": alert.description,
                    "groups": list(alert.groups),
                    "firedtimes": alert.firedtimes,
                    "mitre": [
                        {"id": t, "url": mitre_url(t)} for t in alert.mitre_ids if mitre_url(t)
                    ],
                },
                "record": cloudtrail_record(document),
                "document": document,
                "related": [summary(a) for a in related],
            }
        )

    async def export(request: Request) -> Response:
        params = {k: request.query_params.getlist(k) for k in request.query_params}
        fmt = (params.pop("format", ["jsonl"])[-1] or "jsonl").lower()
        if fmt not in ("jsonl", "csv"):
            raise QueryError(f"bad format {fmt!r}: use jsonl or csv")
        q = parse_console_query(params).alert_query(EXPORT_PAGE)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        media = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
        return StreamingResponse(
            _export_rows(ctx, q, fmt),
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="trailwarden-alerts-{stamp}.{fmt}"',
                "X-Export-Row-Cap": str(EXPORT_MAX_ROWS),
            },
        )

    return [
        Route("/api/alerts", alert_page),
        Route("/api/alerts/export", export),
        Route("/api/alerts/{alert_id}", alert_detail),
    ]


async def _export_rows(ctx: ViewContext, q: AlertQuery, fmt: str) -> AsyncIterator[bytes]:
    written = 0
    if fmt == "csv":
        yield _csv_line(CSV_COLUMNS)
    while True:
        page: AlertPage = await blocking(ctx.store.query, q)
        chunk: list[bytes] = []
        for alert in page.alerts:
            if written >= EXPORT_MAX_ROWS:
                break
            written += 1
            if fmt == "jsonl":
                chunk.append(alert.json.encode() + b"\n")
            else:
                row = summary(alert)
                row["mitre_ids"] = " ".join(alert.mitre_ids)
                chunk.append(_csv_line([str(row.get(c, "")) for c in CSV_COLUMNS]))
        yield b"".join(chunk)
        if written >= EXPORT_MAX_ROWS and page.next_page_token:
            note = f"export stopped at the row cap of {EXPORT_MAX_ROWS:,}: narrow the filter"
            yield (
                (json.dumps({"truncated": note}) + "\n").encode()
                if fmt == "jsonl"
                else (f"# {note}\n".encode())
            )
            return
        if not page.next_page_token:
            return
        q = replace(q, page_token=page.next_page_token)


def _csv_line(values: Any) -> bytes:
    out = io.StringIO()
    # Cells starting with = + - @ are formulas to a spreadsheet: CloudTrail text is
    # attacker-controlled, so such cells are quoted with a leading apostrophe.
    csv.writer(out).writerow(
        [("'" + v) if v[:1] in ("=", "+", "-", "@") else v for v in map(str, values)]
    )
    return out.getvalue().encode()


def _limit(text: str) -> int:
    text = text.strip()
    if not text:
        return 0
    if not text.isdigit():
        raise QueryError(f"bad limit {text[:20]!r}: a whole number of alerts per page")
    return int(text)


def find_alert(ctx: ViewContext, alert_id: str) -> StoredAlert:
    """The alert with this ID (NotFoundError if none).

    An alert ID is ``<unix seconds when raised>.<n>``: the search is bounded to that second of
    arrival, so finding one alert among millions reads one second's alerts, not the table."""
    alert_id = alert_id.strip()
    if not alert_id or len(alert_id) > 100:
        raise QueryError("bad alert id")
    mapping: dict[str, Any] = {"search": alert_id, "limit": 100}
    seconds, _, _ = alert_id.partition(".")
    if seconds.isdigit():
        raised = datetime.fromtimestamp(int(seconds), tz=UTC)
        mapping.update(
            time_basis="arrival",
            from_time=raised.isoformat(),
            to_time=(raised + timedelta(seconds=1)).isoformat(),
        )
    q = alert_query_from_mapping(mapping, origin="alert lookup")
    while True:
        page = ctx.store.query(q)
        for alert in page.alerts:
            if alert.id == alert_id:
                return alert
        if not page.next_page_token:
            raise NotFoundError(f"no alert {alert_id!r}")
        q = replace(q, page_token=page.next_page_token)


def related_alerts(ctx: ViewContext, alert: StoredAlert) -> list[StoredAlert]:
    """Alerts of the same principal or source IP within an hour either side (of the event
    time, else of the arrival), newest first."""
    basis, text = ("event", alert.event_time) if alert.event_time else ("arrival", alert.timestamp)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        basis, when = "arrival", datetime.fromisoformat(alert.timestamp.replace("Z", "+00:00"))
    window = {
        "time_basis": basis,
        "from_time": (when - RELATED_WINDOW).isoformat(),
        "to_time": (when + RELATED_WINDOW).isoformat(),
        "limit": RELATED_SHOWN + 1,
    }
    found: dict[str, StoredAlert] = {}
    probes = [{"user": alert.user}] if alert.user else []
    if alert.source_ip:
        probes.append({"source_ip": alert.source_ip})
    for extra in probes:
        page = ctx.store.query(alert_query_from_mapping({**window, **extra}, origin="related"))
        for other in page.alerts:
            if other.id != alert.id:
                found[other.id] = other
    ordered = sorted(found.values(), key=lambda a: (a.timestamp, a.cursor), reverse=True)
    return ordered[:RELATED_SHOWN]


def mitre_url(technique: str) -> str:
    """attack.mitre.org link of a technique ID (``T1078`` or ``T1078.004``); '' if not one."""
    text = technique.strip().upper()
    main, _, sub = text.partition(".")
    if not (main.startswith("T") and main[1:].isdigit() and (not sub or sub.isdigit())):
        return ""
    return f"https://attack.mitre.org/techniques/{main}/" + (f"{sub}/" if sub else "")


def cloudtrail_record(document: dict[str, Any]) -> Any:
    """The CloudTrail record as it came (``full_log``), else the decoded ``data.aws`` fields."""
    full_log = document.get("full_log")
    if isinstance(full_log, str) and full_log.strip():
        try:
            return json.loads(full_log)
        except ValueError:
            return full_log
    data = document.get("data")
    return data.get("aws", data) if isinstance(data, dict) else data
