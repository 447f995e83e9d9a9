"""An agent as the Admin API shows it: its status and its AgentInfo message.

Shared by the servicer's agent calls and the config mixin's group assignment, which both answer
with an agent.
"""

from __future__ import annotations

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
