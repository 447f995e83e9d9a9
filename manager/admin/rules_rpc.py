"""Admin API: rules (``trailwarden admin rules reload``). Audited with the caller's identity."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.auth import admin_rpc, calling_admin
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.pipeline.reload import RuleReloader


class RulesAdmin:
    """Mixin of AdminService; ``rule_reloader`` is set by the server (absent: not offered)."""

    registry: Registry
    rule_reloader: RuleReloader | None = None

    @admin_rpc
    async def ReloadRules(
        self, request: admin_pb2.ReloadRulesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ReloadRulesResponse:
        actor = f"admin:{calling_admin()}"
        reloader = self.rule_reloader
        if reloader is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this manager cannot reload rules")
            raise AssertionError("unreachable")  # abort raises
        result = await asyncio.to_thread(reloader.reload)
        detail = result.summary() + ("" if result.ok else ": " + "; ".join(result.errors[:5]))
        await asyncio.to_thread(self.registry.audit, actor, "rules.reload", "ruleset", detail)
        return admin_pb2.ReloadRulesResponse(
            ok=result.ok,
            rules=result.rules,
            sigma_rules=result.sigma,
            files=list(result.files),
            errors=list(result.errors),
            summary=result.summary(),
        )
