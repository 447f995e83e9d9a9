"""The agents page's data: what ``admin agents --json`` shows, for every signed-in user.

``/api/agents`` lists every agent as ``agent_info_json`` renders it (the function the CLI uses):
status, version, last seen, address, applied config revision, groups, and the agent's last status
report — each source's state, last pass, objects and records collected, and the objects it could
not collect by bucket/key. Revocation (admins only) is the console's ``agents_api``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from trailwarden.manager.admin.agent_view import agent_info, agent_info_json
from trailwarden.manager.console.views.common import JSONResponse, ViewContext, blocking


def routes(ctx: ViewContext) -> list[BaseRoute]:
    def listing() -> list[dict[str, Any]]:
        sessions = ctx.link_sessions
        return [agent_info_json(agent_info(r, sessions)) for r in ctx.registry.list_agents()]

    async def agents(request: Request) -> Response:
        return JSONResponse({"agents": await blocking(listing)})

    return [Route("/api/agents", agents)]
