"""Alerts and event rows built directly from the domain types, as the analysis would."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from trailwarden.common.model import AgentRef
from trailwarden.common.timeparse import to_rfc3339
from trailwarden.manager.analysis.alert import Alert, RuleHit
from trailwarden.manager.store.base import AlertStore, EventRow
from trailwarden.manager.store.query import build_alert_query

BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_counter = itertools.count(1)


def make_alert(
    *,
    rule_id: str = "80202",
    level: int = 3,
    description: str = "AWS CloudTrail: ConsoleLogin",
    when: datetime | None = None,
    event_id: str | None = None,
    recipient_account: str = "111111111111",
    agent_id: str = "agent-1",
    agent_name: str = "host-a",
    account: str = "111111111111",
    region: str = "us-east-1",
    event_source: str = "signin.amazonaws.com",
    event_name: str = "ConsoleLogin",
    user: str = "alice",
    source_ip: str = "198.51.100.7",
    groups: tuple[str, ...] = ("amazon", "aws_cloudtrail"),
    mitre_ids: tuple[str, ...] = (),
    extra_data: dict[str, Any] | None = None,
    event_time: str | None = None,
    source: str = "cloudtrail",
    bucket: str = "trail-bucket",
    error_code: str = "",
) -> Alert:
    """An alert raised at ``when``; its CloudTrail eventTime is 5 minutes earlier unless
    ``event_time`` gives the text ('' for a record without one)."""
    n = next(_counter)
    when = when or BASE_TIME
    event_id = event_id if event_id is not None else f"evt-{n:08d}"
    data: dict[str, Any] = {
        "integration": "aws",
        "aws": {
            "source": source,
            "eventID": event_id,
            "eventName": event_name,
            "eventSource": event_source,
            "awsRegion": region,
            "sourceIPAddress": source_ip,
            "recipientAccountId": recipient_account,
            "userIdentity": {"userName": user, "accountId": account},
            "log_info": {"s3bucket": bucket, "log_file": "AWSLogs/x.json.gz"},
        },
    }
    if error_code:
        data["aws"]["errorCode"] = error_code
    if extra_data:
        data["aws"].update(extra_data)
    return Alert(
        id=f"{int(when.timestamp())}.{n}",
        timestamp=to_rfc3339(when),
        rule=RuleHit(
            id=rule_id, level=level, description=description, groups=groups, mitre_ids=mitre_ids
        ),
        agent=AgentRef(id=agent_id, name=agent_name),
        manager_name="manager-1",
        location="trail-bucket/AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/20/x.json.gz",
        data=data,
        event_id=event_id,
        recipient_account=recipient_account,
        event_time=(
            to_rfc3339(when - timedelta(minutes=5)).replace(".000", "")
            if event_time is None
            else event_time
        ),
        account=account,
        region=region,
        event_source=event_source,
        event_name=event_name,
        user=user,
        source_ip=source_ip,
    )


def event_for(alert: Alert, raw: bytes = b'{"eventID":"x"}') -> EventRow:
    """The EventRow ingest would commit together with ``alert``."""
    return EventRow(
        event_key=alert.event_id,
        recipient_account=alert.recipient_account,
        agent_id=alert.agent.id,
        event_time=alert.event_time,
        location=alert.location,
        raw=raw,
    )


def commit_in_batches(store: AlertStore, alerts: list[Alert], size: int = 64) -> None:
    """Commit ``alerts`` in batches of ``size`` (several commits, as ingest would)."""
    for first in range(0, len(alerts), size):
        batch = alerts[first : first + size]
        assert store.commit([event_for(a) for a in batch], batch) == len(batch)


def ids_of(store: AlertStore, **kwargs: Any) -> list[str]:
    """IDs of the alerts ``build_alert_query(**kwargs)`` finds, newest first (one page)."""
    page = store.query(build_alert_query(limit=1000, **kwargs))
    assert page.next_page_token == ""
    return [a.id for a in page.alerts]
