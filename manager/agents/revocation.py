"""Revoking an agent: the registry marks it revoked and its live link is cut at once.

One implementation for both front ends: the Admin API's RevokeAgent and the console's
``POST /api/agents/{id}/revoke``. It runs on the manager's event loop (the link sessions are
that loop's objects); the registry write goes to a worker thread.
"""

from __future__ import annotations

import asyncio

from trailwarden.manager.agents.registry import AgentRecord, Registry
from trailwarden.manager.link.sessions import Sessions


async def revoke_agent(
    registry: Registry, sessions: Sessions, agent_id: str, actor: str, detail: str = ""
) -> AgentRecord:
    """Revoke ``agent_id`` on behalf of ``actor`` (audited) and close its link if connected."""
    record = await asyncio.to_thread(registry.revoke, agent_id, actor, detail)
    sessions.close(record.id, "agent revoked by an admin")
    return record
