"""The overview: Wazuh's AWS dashboard panels (with its titles) and the ones it lacks.

Each panel is one JSON endpoint, ``/api/panels/{name}``, taking the page's range and filters
(``views/params.py``), so the page draws panels as they arrive and a slow one does not hold the
others back. ``/api/panels`` lists them (name, title, kind, the field a click filters on).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from trailwarden.common.errors import NotFoundError
from trailwarden.manager.console.views.alerts import mitre_url
from trailwarden.manager.console.views.common import JSONResponse, ViewContext, blocking
from trailwarden.manager.console.views.params import ConsoleQuery, parse_console_query
from trailwarden.manager.console.views.ruleset import RulesetCache
from trailwarden.manager.geo import kind_of_key, map_name_of
from trailwarden.manager.store.base import SeriesResult, StatsResult

DETECTION_LEVEL = 5
"""Detections: alerts at this level or above."""
DETECTIONS_SHOWN = 20
TOP_KEYS = 10
"""Slices of a pie, bars of a top list; the rest is summed as ``(other)``."""
SERIES_TOP = 8
"""Stacks of an area chart; the rest is one "other" stack."""
OTHER = "(other)"
IAM_SOURCE = "iam.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Panel:
    name: str
    title: str
    kind: str
    """``total``, ``pie``, ``area`` (stacked over time), ``bar`` (top values), ``map``,
    ``detections``."""
    by: str = ""
    """The field counted (a URL filter name): clicking a slice adds ``by=value``."""
    fixed: tuple[tuple[str, str], ...] = ()
    """URL filters the panel always applies (the IAM panels: eventSource IAM)."""


PANELS: tuple[Panel, ...] = (
    Panel("total", "Total alerts", "total"),
    Panel("sources", "Sources", "pie", "source"),
    Panel("accounts", "Accounts", "pie", "account"),
    Panel("buckets", "Buckets", "pie", "bucket"),
    Panel("regions", "Regions", "pie", "region"),
    Panel("iam-events", "IAM events", "pie", "event", (("service", IAM_SOURCE),)),
    Panel("events-by-source", "Events by source over time", "area", "source"),
    Panel("events-by-bucket", "Events by S3 bucket over time", "area", "bucket"),
    Panel("geolocation", "Geolocation map", "map", "ip"),
    Panel("iam-rules", "IAM alerts by rule over time", "area", "rule", (("service", IAM_SOURCE),)),
    Panel("levels", "Alerts by level over time", "area", "level"),
    Panel("principals", "Top principals", "bar", "user"),
    Panel("source-ips", "Top source IPs", "bar", "ip"),
    Panel("errors", "Top failing calls (errorCode)", "bar", "error"),
    Panel("detections", "Detections (level 5 and above)", "detections", "rule"),
)
BY_NAME = {panel.name: panel for panel in PANELS}


def routes(ctx: ViewContext, rulesets: RulesetCache) -> list[BaseRoute]:
    async def panel_list(request: Request) -> Response:
        return JSONResponse(
            {
                "panels": [
                    {"name": p.name, "title": p.title, "kind": p.kind, "by": p.by} for p in PANELS
                ]
            }
        )

    async def panel_data(request: Request) -> Response:
        panel = BY_NAME.get(request.path_params["name"])
        if panel is None:
            raise NotFoundError(f"no panel {request.path_params['name']!r}; see /api/panels")
        params: dict[str, Any] = {k: request.query_params.getlist(k) for k in request.query_params}
        for name, value in panel.fixed:
            params[name] = [value]
        if panel.kind == "detections":
            current = [int(v) for v in params.get("level", []) if v.isdigit()]
            params["level"] = [str(max([DETECTION_LEVEL, *current]))]
        cq = parse_console_query(params)
        body = await blocking(_compute, ctx, rulesets, panel, cq)
        return JSONResponse(
            {
                "panel": panel.name,
                "title": panel.title,
                "kind": panel.kind,
                "by": panel.by,
                "query": cq.as_json(),
                **body,
            }
        )

    return [
        Route("/api/panels", panel_list),
        Route("/api/panels/{name}", panel_data),
    ]


def _compute(
    ctx: ViewContext, rulesets: RulesetCache, panel: Panel, cq: ConsoleQuery
) -> dict[str, Any]:
    store = ctx.store
    if panel.kind == "total":
        return {"total": store.stats(cq.stats_query("level", top=1)).total}
    if panel.kind in ("pie", "bar"):
        if panel.name == "errors":
            return _failing_calls(ctx, cq)
        return stats_json(store.stats(cq.stats_query(panel.by, TOP_KEYS)))
    if panel.kind == "area":
        return series_json(store.series(cq.series_query(panel.by, SERIES_TOP)))
    if panel.kind == "map":
        return _geolocation(ctx, cq)
    return _detections(ctx, rulesets, cq)


def stats_json(result: StatsResult) -> dict[str, Any]:
    buckets: list[dict[str, Any]] = [
        {"key": b.key, "label": b.label, "count": b.count} for b in result.buckets
    ]
    if result.other:
        buckets.append({"key": OTHER, "label": "", "count": result.other, "other": True})
    return {"buckets": buckets, "total": result.total}


def series_json(result: SeriesResult) -> dict[str, Any]:
    return {
        "interval_seconds": result.interval_seconds,
        "times": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in result.starts],
        "stacks": [
            {
                "key": OTHER if g.is_other else g.key,
                "label": g.label,
                "counts": list(g.counts),
                "other": g.is_other,
            }
            for g in result.groups
        ],
        "total": result.total,
    }


def _failing_calls(ctx: ViewContext, cq: ConsoleQuery) -> dict[str, Any]:
    # Failing calls only: a call that succeeded has no errorCode (its group's key is "").
    result = stats_json(ctx.store.stats(cq.stats_query("error", TOP_KEYS + 1)))
    succeeded = sum(b["count"] for b in result["buckets"] if b["key"] == "")
    buckets = [b for b in result["buckets"] if b["key"] != ""]
    return {"buckets": buckets[:TOP_KEYS], "total": result["total"] - succeeded}


def _geolocation(ctx: ViewContext, cq: ConsoleQuery) -> dict[str, Any]:
    # The store counts alerts by their address's country (``geo.country_of``, kept in its
    # rollups): a few hundred groups, however many addresses the range holds.
    result = ctx.store.stats(cq.stats_query("country", 0))
    not_placed: Counter[str] = Counter()
    countries = []
    for bucket in result.buckets:
        kind = kind_of_key(bucket.key)
        if kind == "public":
            countries.append(
                {"name": map_name_of(bucket.key), "country": bucket.key, "count": bucket.count}
            )
        else:
            not_placed[kind] += bucket.count
    return {
        "countries": countries,
        "not_placed": dict(not_placed),
        "total": result.total,
        "attribution": "GeoLite2 data created by MaxMind (CC BY-SA 4.0), via geoip2fast",
    }


def _detections(ctx: ViewContext, rulesets: RulesetCache, cq: ConsoleQuery) -> dict[str, Any]:
    result = ctx.store.stats(cq.stats_query("rule", DETECTIONS_SHOWN))
    rules = rulesets.get().rules
    detected = []
    for bucket in result.buckets:
        rule = rules.get(bucket.key)
        detected.append(
            {
                "key": bucket.key,
                "label": bucket.label,
                "count": bucket.count,
                "mitre": [
                    {"id": t, "url": mitre_url(t)}
                    for t in (rule.mitre_ids if rule is not None else ())
                    if mitre_url(t)
                ],
            }
        )
    return {"rules": detected, "total": result.total, "more_rules": result.other}
