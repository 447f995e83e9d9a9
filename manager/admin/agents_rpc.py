"""Admin API for removing and renaming agents (a mixin of the Admin servicer).

RemoveAgent revokes a live agent first (its link is cut, as RevokeAgent does), then deletes it
from the registry and drops its config state; the alerts it raised stay in the alert store.
RenameAgent changes the name the manager shows (console, ``admin agents``, new alerts); the ID,
which is the certificate's CN, stays. A connected agent's live session takes the new name at
once, so the next batch's alerts carry it. Both are audited with the calling admin's identity.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from trailwarden.common.model import AgentRef
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.agent_view import agent_info
from trailwarden.manager.admin.auth import admin_rpc, calling_admin
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.agents.revocation import revoke_agent
from trailwarden.manager.central.groups import forget_agent
from trailwarden.manager.central.store import ConfigStore
from trailwarden.manager.link.sessions import Sessions


class AgentsAdmin:
    registry: Registry
    sessions: Sessions
    config_store: ConfigStore

    @admin_rpc
    async def RemoveAgent(
        self, request: admin_pb2.RemoveAgentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RemoveAgentResponse:
        actor = f"admin:{calling_admin()}"
        agent_id = request.agent_id.strip()
        record = await asyncio.to_thread(self.registry.get, agent_id)
        live = not record.revoked
        if live:
            record = await revoke_agent(self.registry, self.sessions, agent_id, actor, "removal")
        info = agent_info(record, self.sessions)
        await asyncio.to_thread(self.registry.remove_agent, agent_id, actor)
        if hasattr(self, "config_store"):
            await asyncio.to_thread(forget_agent, self.config_store, agent_id)
        return admin_pb2.RemoveAgentResponse(agent=info, revoked=live)

    @admin_rpc
    async def RenameAgent(
        self, request: admin_pb2.RenameAgentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RenameAgentResponse:
        actor = f"admin:{calling_admin()}"
        record, old_name = await asyncio.to_thread(
            self.registry.rename_agent, request.agent_id.strip(), request.new_name.strip(), actor
        )
        session = self.sessions.get(record.id)
        if session is not None:
            session.agent = AgentRef(record.id, record.name)
        return admin_pb2.RenameAgentResponse(
            agent=agent_info(record, self.sessions), old_name=old_name
        )
