"""Admin-only agent actions of the console's JSON API.

``POST /api/agents/{agent_id}/revoke`` runs the same revocation as `trailwarden admin revoke`
(manager/agents/revocation.py), audited as ``console:<name>`` with the client's address.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from trailwarden.manager.agents.revocation import revoke_agent
from trailwarden.manager.console.context import actor_for
from trailwarden.manager.console.roles import (
    admin_only,
    client_address,
    console_context,
    current_user,
)


def routes() -> list[BaseRoute]:
    return [Route("/api/agents/{agent_id}/revoke", revoke, methods=["POST"])]


@admin_only
async def revoke(request: Request) -> JSONResponse:
    user = current_user(request)
    context = console_context(request)
    agent_id = str(request.path_params["agent_id"])
    actor = actor_for(user.name)
    detail = f"address={client_address(request)}"
    record = await run_in_threadpool(
        context.call_on_manager_loop,
        lambda: revoke_agent(context.registry, context.link_sessions, agent_id, actor, detail),
    )
    return JSONResponse(
        {"agent_id": record.id, "name": record.name, "state": record.state, "revoked_by": actor}
    )
