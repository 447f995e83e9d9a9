"""The Admin API servicer: agents, tokens, revocation, audit (+ alerts, config, users, rules,
tokens, agents and groups mixins).

Every method is admin-only (``@admin_rpc``: the caller's admin certificate, never a message
field) and every change is written to the audit log with the caller's identity.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from trailwarden.common.errors import ConfigError, EnrollmentError
from trailwarden.common.wire import admin_pb2, admin_pb2_grpc
from trailwarden.manager.admin.agent_view import agent_info
from trailwarden.manager.admin.agents_rpc import AgentsAdmin
from trailwarden.manager.admin.alerts_rpc import AlertsAdmin
from trailwarden.manager.admin.auth import admin_rpc, calling_admin
from trailwarden.manager.admin.certificates_view import CertificateView
from trailwarden.manager.admin.config_rpc import ConfigAdmin
from trailwarden.manager.admin.groups_rpc import GroupsAdmin
from trailwarden.manager.admin.limits import (
    DEFAULT_AUDIT_LIMIT,
    DEFAULT_TOKEN_TTL_SECONDS,
    DEFAULT_TOKEN_USES,
    MAX_AUDIT_LIMIT,
    MAX_TOKEN_TTL_SECONDS,
    MAX_TOKEN_USES,
    RESPONSE_BUDGET_BYTES,
    bounded,
    present,
)
from trailwarden.manager.admin.rules_rpc import RulesAdmin
from trailwarden.manager.admin.tokens_rpc import TokensAdmin
from trailwarden.manager.admin.users_rpc import UsersAdmin
from trailwarden.manager.agents.registry import Registry, check_agent_name
from trailwarden.manager.agents.revocation import revoke_agent
from trailwarden.manager.central.distributor import ConfigDistributor
from trailwarden.manager.central.document import check_group_name
from trailwarden.manager.central.store import ConfigStore
from trailwarden.manager.link.sessions import Sessions
from trailwarden.manager.store.base import AlertStore
from trailwarden.manager.users.accounts import Accounts


class AdminService(
    AlertsAdmin,
    ConfigAdmin,
    UsersAdmin,
    RulesAdmin,
    TokensAdmin,
    AgentsAdmin,
    GroupsAdmin,
    admin_pb2_grpc.AdminServicer,
):
    certificate_view: CertificateView | None = None
    """Agents' certificate expiry and CA rotation state in `admin agents` (set by the server)."""

    def __init__(
        self,
        *,
        registry: Registry,
        sessions: Sessions,
        alert_store: AlertStore,
        enroll_address: str,
        ca_fingerprint: str,
        pipeline_stats: Any = None,
        config_store: ConfigStore | None = None,
        distributor: ConfigDistributor | None = None,
        accounts: Accounts | None = None,
    ) -> None:
        self.registry = registry
        self.sessions = sessions
        self.alert_store = alert_store
        self.enroll_address = enroll_address
        self.ca_fingerprint = ca_fingerprint
        self.pipeline_stats = pipeline_stats
        if config_store is not None and distributor is not None:
            self.config_store = config_store
            self.distributor = distributor
        if accounts is not None:
            self.accounts = accounts

    @admin_rpc
    async def ListAgents(
        self, request: admin_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ListAgentsResponse:
        records = await asyncio.to_thread(self.registry.list_agents)
        response = admin_pb2.ListAgentsResponse()
        size = 0
        for record in records:
            info = agent_info(record, self.sessions)
            size += info.ByteSize()
            if size > RESPONSE_BUDGET_BYTES:  # keep every agent; drop the bulky status detail
                info.status_json = '{"omitted": "admin agents response size budget"}'
            response.agents.append(info)
        if self.certificate_view is not None:
            await asyncio.to_thread(self.certificate_view.annotate, response)
        return response

    @admin_rpc
    async def RevokeAgent(
        self, request: admin_pb2.RevokeAgentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RevokeAgentResponse:
        actor = f"admin:{calling_admin()}"
        record = await revoke_agent(self.registry, self.sessions, request.agent_id, actor)
        return admin_pb2.RevokeAgentResponse(agent=agent_info(record, self.sessions))

    @admin_rpc
    async def CreateToken(
        self, request: admin_pb2.CreateTokenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.CreateTokenResponse:
        ttl = bounded(
            "ttl_seconds (--ttl)",
            present(request, "ttl_seconds"),
            DEFAULT_TOKEN_TTL_SECONDS,
            MAX_TOKEN_TTL_SECONDS,
        )
        uses = bounded(
            "uses (--uses)", present(request, "uses"), DEFAULT_TOKEN_USES, MAX_TOKEN_USES
        )
        if request.group:
            check_group_name(request.group)
        if request.for_agent:
            try:
                check_agent_name(request.for_agent)
            except EnrollmentError as exc:
                raise ConfigError(f"for_agent (--for-agent): {exc}") from exc
        actor = f"admin:{calling_admin()}"
        token = await asyncio.to_thread(
            self.registry.create_token, ttl, uses, request.group, actor, request.for_agent
        )
        return admin_pb2.CreateTokenResponse(
            token=token.token,
            expires_unix_ms=token.expires_ms,
            uses=token.uses,
            enroll_address=self.enroll_address,
            ca_sha256=self.ca_fingerprint,
            group=token.group,
            for_agent=token.for_agent,
        )

    @admin_rpc
    async def Audit(
        self, request: admin_pb2.AuditRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.AuditResponse:
        limit = bounded(
            "limit (--limit)", present(request, "limit"), DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT
        )
        entries = await asyncio.to_thread(self.registry.audit_entries, limit)
        return admin_pb2.AuditResponse(
            entries=[
                admin_pb2.AuditEntry(
                    time_unix_ms=e.time_ms,
                    actor=e.actor,
                    action=e.action,
                    target=e.target,
                    detail=e.detail,
                )
                for e in entries
            ]
        )
