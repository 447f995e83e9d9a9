"""An alert as both stores keep it: the ``alerts`` row an Alert becomes (``ALERT_COLUMNS``
order), and the row read back as a ``StoredAlert`` (with the store's cursor first); an archived
event read back. The columns are the same on every engine, so the conversion is one piece of
code; each backend's schema says how it stores them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from trailwarden.common.timeparse import to_rfc3339, utc_now
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.base import ArchivedEvent, StoredAlert

ALERT_COLUMNS = (
    "alert_id, ts_ms, event_time_ms, event_time, rule_id, level, description, agent_id, "
    "agent_name, account, region, event_source, event_name, principal, source_ip, event_id, "
    "recipient_account, json, source, bucket, error_code, groups, mitre"
)


def alert_row(alert: Alert) -> tuple[Any, ...]:
    """The ``alerts`` row for an Alert, in ``ALERT_COLUMNS`` order."""
    document = alert.document()
    ts_ms = time_ms(alert.timestamp)
    if ts_ms is None:
        ts_ms = int(utc_now().timestamp() * 1000)
    event_ms = time_ms(alert.event_time)
    aws = _aws_fields(alert, document)
    rule = alert.rule
    return (
        alert.id,
        ts_ms,
        ts_ms if event_ms is None else event_ms,
        alert.event_time,
        rule.id,
        rule.level,
        rule.description,
        alert.agent.id,
        alert.agent.name,
        alert.account,
        alert.region,
        alert.event_source,
        alert.event_name,
        alert.user,
        alert.source_ip,
        alert.event_id,
        alert.recipient_account,
        document,
        _str(aws.get("source")),
        _str((aws.get("log_info") or {}).get("s3bucket") if isinstance(aws, dict) else None),
        _str(aws.get("errorCode")),
        _tags(rule.groups),
        _tags(rule.mitre_ids),
    )


def _aws_fields(alert: Alert, document: str) -> dict[str, Any]:
    """The decoded ``aws`` object: from ``alert.data`` when it is still there, else from the
    rendered document (an analysis worker hands alerts over with only the document)."""
    data: Any = alert.data
    if not data:
        try:
            data = orjson.loads(document).get("data")
        except (orjson.JSONDecodeError, AttributeError):
            data = None
    aws = data.get("aws") if isinstance(data, dict) else None
    return aws if isinstance(aws, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _tags(values: tuple[str, ...]) -> str:
    """``,a,b,`` (or '' for none): ``instr(column, ',a,')`` then matches one value exactly."""
    return f",{','.join(values)}," if values else ""


@lru_cache(maxsize=8192)
def time_ms(text: str) -> int | None:
    """Unix milliseconds of an RFC 3339 time; None if empty or unreadable.

    Cached: a batch's alerts share their raise time and CloudTrail times repeat within a file.
    """
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def rfc3339_ms(ms: int | None) -> str:
    return "" if ms is None else to_rfc3339(datetime.fromtimestamp(ms / 1000, tz=UTC))


def archived_event(row: Sequence[Any]) -> ArchivedEvent:
    return ArchivedEvent(
        cursor=row[0],
        timestamp=rfc3339_ms(row[1]),
        agent_id=row[2],
        event_time=rfc3339_ms(row[3]),
        location=row[4],
        raw=bytes(row[5]),
    )


def stored_alert(row: Sequence[Any]) -> StoredAlert:
    document = row[18]
    try:
        rule = json.loads(document).get("rule", {})
    except ValueError:
        rule = {}
    mitre = rule.get("mitre") or {}
    return StoredAlert(
        cursor=row[0],
        id=row[1],
        timestamp=to_rfc3339(datetime.fromtimestamp(row[2] / 1000, tz=UTC)),
        event_time=row[4],
        rule_id=row[5],
        level=row[6],
        description=row[7],
        groups=tuple(rule.get("groups") or ()),
        mitre_ids=tuple(mitre.get("id") or ()),
        firedtimes=int(rule.get("firedtimes") or 0),
        agent_id=row[8],
        agent_name=row[9],
        account=row[10],
        region=row[11],
        event_source=row[12],
        event_name=row[13],
        user=row[14],
        source_ip=row[15],
        event_id=row[16],
        recipient_account=row[17],
        json=document,
        source=row[19],
        bucket=row[20],
        error_code=row[21],
    )
