"""Admin API for alerts: QueryAlerts, FollowAlerts, Stats, Series (a mixin of the Admin servicer).

The servicer sets ``self.alert_store`` (an ``AlertStore``) and may set ``self.pipeline_stats``
(an object with ``snapshot() -> Mapping``, e.g. the ingest's PipelineCounters, or a callable
returning a mapping) whose counters ``Stats`` returns in its ``json`` field.

This is the only place where the alert protobuf messages meet the store's domain types.
SQLite calls block, so each runs in ``asyncio.to_thread``. A bad query raises QueryError, which
``@admin_rpc`` turns into INVALID_ARGUMENT with our message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from trailwarden.common.errors import QueryError, StoreError
from trailwarden.common.timeparse import to_rfc3339
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.auth import admin_rpc, admin_stream_rpc, calling_admin
from trailwarden.manager.store.base import (
    DEFAULT_SERIES_TOP,
    AlertQuery,
    AlertStore,
    SeriesResult,
    StatsResult,
    StoredAlert,
)
from trailwarden.manager.store.query import (
    build_alert_query,
    build_series_query,
    build_stats_query,
)

log = logging.getLogger(__name__)

FOLLOW_POLL_SECONDS = 0.25
"""How often FollowAlerts looks for new alerts when the last look found none."""
FOLLOW_PAGE = 500
"""Alerts read per look when the request names no limit."""
FOLLOW_MAX_FAILURES = 20
"""Consecutive failed store reads (about 5 s) after which a follow stream ends with an error."""


def filter_from_proto(request: admin_pb2.AlertQuery) -> dict[str, Any]:
    """The filter keywords (``store.query.build_filter``'s) of an AlertQuery message."""
    return {
        "since": request.since,
        "from_time": request.from_time,
        "to_time": request.to_time,
        "time_basis": request.time_basis,
        "rule_ids": tuple(request.rule_ids),
        "min_level": request.min_level,
        "level": request.level if request.HasField("level") else None,
        "agent_id": request.agent_id,
        "account": request.account,
        "region": request.region,
        "user": request.user,
        "event_name": request.event_name,
        "event_source": request.event_source,
        "source": request.source,
        "bucket": request.bucket,
        "error_code": request.error_code,
        "source_ip": request.source_ip,
        "group": request.group,
        "mitre": request.mitre,
        "search": request.search,
    }


def query_from_proto(request: admin_pb2.AlertQuery, *, follow: bool = False) -> AlertQuery:
    """The domain query for an AlertQuery message (QueryError if a field is bad)."""
    return build_alert_query(
        limit=request.limit or (FOLLOW_PAGE if follow else 0),
        page_token="" if follow else request.page_token,
        **filter_from_proto(request),
    )


def stats_filter_from_proto(request: admin_pb2.StatsRequest) -> dict[str, Any]:
    """Filters of a StatsRequest: its ``filter`` message, with the time fields either there or
    in the request's own (older) fields, not both."""
    kwargs = filter_from_proto(request.filter)
    own = {"since": request.since, "from_time": request.from_time, "to_time": request.to_time}
    if any(own.values()):
        if any(kwargs[key] for key in own):
            raise QueryError(
                "StatsRequest: give the time range either in its own fields or in filter, not both"
            )
        kwargs.update(own)
    return kwargs


def alert_to_proto(alert: StoredAlert) -> admin_pb2.Alert:
    return admin_pb2.Alert(
        id=alert.id,
        timestamp=alert.timestamp,
        event_time=alert.event_time,
        rule_id=alert.rule_id,
        level=alert.level,
        description=alert.description,
        groups=list(alert.groups),
        mitre_ids=list(alert.mitre_ids),
        firedtimes=alert.firedtimes,
        agent_id=alert.agent_id,
        agent_name=alert.agent_name,
        account=alert.account,
        region=alert.region,
        event_source=alert.event_source,
        event_name=alert.event_name,
        user=alert.user,
        source_ip=alert.source_ip,
        event_id=alert.event_id,
        json=alert.json,
        source=alert.source,
        bucket=alert.bucket,
        error_code=alert.error_code,
    )


def stats_to_proto(result: StatsResult, extra: Mapping[str, Any]) -> admin_pb2.StatsResponse:
    return admin_pb2.StatsResponse(
        buckets=[
            admin_pb2.StatsBucket(key=b.key, label=b.label, count=b.count) for b in result.buckets
        ],
        total=result.total,
        json=json.dumps(extra, sort_keys=True, default=str),
        other=result.other,
        by=result.by.value,
    )


def series_to_proto(result: SeriesResult) -> admin_pb2.SeriesResponse:
    return admin_pb2.SeriesResponse(
        interval_seconds=result.interval_seconds,
        starts=[to_rfc3339(start) for start in result.starts],
        groups=[
            admin_pb2.SeriesGroup(
                key=g.key, label=g.label, counts=list(g.counts), is_other=g.is_other
            )
            for g in result.groups
        ],
        total=result.total,
        split=result.split.value if result.split else "",
    )


def _pipeline_counters(source: Any) -> dict[str, Any]:
    if source is None:
        return {}
    snapshot = getattr(source, "snapshot", None)
    value = snapshot() if callable(snapshot) else source() if callable(source) else source
    return dict(value) if isinstance(value, Mapping) else {}


class AlertsAdmin:
    """Mixin: alert queries, live follow and stats for the Admin servicer."""

    alert_store: AlertStore
    pipeline_stats: Any = None

    @admin_rpc
    async def QueryAlerts(
        self, request: admin_pb2.AlertQuery, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.AlertPage:
        query = query_from_proto(request)
        page = await asyncio.to_thread(self.alert_store.query, query)
        return admin_pb2.AlertPage(
            alerts=[alert_to_proto(a) for a in page.alerts], next_page_token=page.next_page_token
        )

    @admin_stream_rpc
    async def FollowAlerts(
        self, request: admin_pb2.AlertQuery, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[admin_pb2.Alert]:
        query = query_from_proto(request, follow=True)
        # With a start time the stream first replays what was raised since then, so a client
        # that starts following a moment after an alert was raised still gets it.
        cursor: int | None = 0 if query.filter.start is not None else None
        who = calling_admin()
        log.info("stage=admin follow started admin=%s", who)
        failures = 0
        try:
            while True:
                try:
                    alerts, cursor = await asyncio.to_thread(self.alert_store.follow, query, cursor)
                except StoreError as exc:
                    # A busy moment must not end a long-lived follow; a lasting fault does.
                    failures += 1
                    if failures >= FOLLOW_MAX_FAILURES:
                        raise
                    log.warning(
                        "stage=admin follow admin=%s store read failed, retrying: %s", who, exc
                    )
                    await asyncio.sleep(FOLLOW_POLL_SECONDS)
                    continue
                failures = 0
                for alert in alerts:
                    yield alert_to_proto(alert)
                if len(alerts) < query.limit:
                    await asyncio.sleep(FOLLOW_POLL_SECONDS)
        finally:
            log.info("stage=admin follow ended admin=%s", who)

    @admin_rpc
    async def Stats(
        self, request: admin_pb2.StatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.StatsResponse:
        query = build_stats_query(
            by=request.by, top=request.top, **stats_filter_from_proto(request)
        )
        result = await asyncio.to_thread(self.alert_store.stats, query)
        counts = await asyncio.to_thread(self.alert_store.counts)
        extra = {"pipeline": _pipeline_counters(self.pipeline_stats), "store": counts}
        return stats_to_proto(result, extra)

    @admin_rpc
    async def Series(
        self, request: admin_pb2.SeriesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.SeriesResponse:
        query = build_series_query(
            interval=request.interval,
            split=request.split,
            top=request.top or DEFAULT_SERIES_TOP,
            **filter_from_proto(request.filter),
        )
        result = await asyncio.to_thread(self.alert_store.series, query)
        return series_to_proto(result)
