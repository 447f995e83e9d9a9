"""An agent as the Admin API shows it: its status and its AgentInfo message.

Shared by the servicer's agent calls and the config mixin's group assignment, which both answer
with an agent.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from trailwarden.common.wire import admin_pb2
from trailwarden.manager.agents.registry import AgentRecord
from trailwarden.manager.link.sessions import Sessions


def agent_status(record: AgentRecord, sessions: Sessions) -> str:
    if record.revoked:
        return "revoked"
    if sessions.is_connected(record.id):
        return "connected"
    return "disconnected" if record.last_seen_ms else "never connected"


def agent_info(record: AgentRecord, sessions: Sessions) -> admin_pb2.AgentInfo:
    return admin_pb2.AgentInfo(
        agent_id=record.id,
        name=record.name,
        status=agent_status(record, sessions),
        last_seen_unix_ms=record.last_seen_ms,
        address=record.address,
        agent_version=record.agent_version,
        groups=list(record.groups),
        applied_config_revision=record.applied_config_revision,
        hostname=record.hostname,
        enrolled_unix_ms=record.enrolled_ms,
        status_json=record.status_json,
    )


def agent_info_json(info: admin_pb2.AgentInfo) -> dict[str, Any]:
    """An agent as ``admin agents --json`` and the console show it: every AgentInfo field, with
    the agent's last status report parsed as ``status_detail`` (sources, problems, spool)."""
    item: dict[str, Any] = json_format.MessageToDict(
        info, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    item["status_detail"] = json.loads(info.status_json) if info.status_json else None
    del item["status_json"]
    return item
