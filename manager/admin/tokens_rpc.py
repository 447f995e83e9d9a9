"""Admin API for enrollment tokens after their creation (a mixin of the Admin servicer).

ListTokens shows each stored token by its ID — the first hex digits of its SHA-256, which is
all the registry keeps — never the token itself; RevokeToken deletes one so nobody can enroll
with it. Both need an admin certificate; the revocation is audited with the admin's identity.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.auth import admin_rpc, calling_admin
from trailwarden.manager.agents.registry import Registry, TokenRecord


def token_info(record: TokenRecord) -> admin_pb2.TokenInfo:
    return admin_pb2.TokenInfo(
        token_id=record.token_id,
        group=record.group,
        for_agent=record.for_agent,
        uses_left=record.uses_left,
        uses_total=record.uses_total,
        expires_unix_ms=record.expires_ms,
        created_unix_ms=record.created_ms,
        created_by=record.created_by,
        state=record.state,
    )


class TokensAdmin:
    registry: Registry

    @admin_rpc
    async def ListTokens(
        self, request: admin_pb2.ListTokensRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ListTokensResponse:
        records = await asyncio.to_thread(self.registry.list_tokens)
        return admin_pb2.ListTokensResponse(tokens=[token_info(r) for r in records])

    @admin_rpc
    async def RevokeToken(
        self, request: admin_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RevokeTokenResponse:
        actor = f"admin:{calling_admin()}"
        record = await asyncio.to_thread(self.registry.revoke_token, request.token_id, actor)
        return admin_pb2.RevokeTokenResponse(token=token_info(record))
