"""Admin API for central configuration (a mixin of the Admin servicer).

SetConfig, GetConfig, ConfigHistory, RollbackConfig, ConfigStatus and AssignGroup. The servicer
sets ``self.config_store`` (a ``ConfigStore``), ``self.distributor`` (a ``ConfigDistributor``),
``self.registry`` and ``self.sessions``. Changes are checked by the store (a refused document
raises ConfigError → INVALID_ARGUMENT, SecretInConfigError included), pushed at once to the
connected agents they touch, and written to the audit log with the calling admin's identity
(from its certificate) and a diff of what changed.
"""

from __future__ import annotations

import asyncio
import difflib
from typing import Any

import grpc

from trailwarden.common.errors import ConfigError, NotFoundError
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.agent_view import agent_info
from trailwarden.manager.admin.auth import admin_rpc, calling_admin
from trailwarden.manager.admin.limits import (
    DEFAULT_HISTORY_LIMIT,
    MAX_HISTORY_LIMIT,
    MAX_REVISION,
    RESPONSE_BUDGET_BYTES,
    bounded,
    present,
)
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.central.distributor import ConfigDistributor
from trailwarden.manager.central.store import Change, ConfigStore, Revision, Target
from trailwarden.manager.link.sessions import Sessions

AUDIT_DIFF_LIMIT = 4000
"""Characters of the diff kept in an audit entry."""


def target_from_proto(target: admin_pb2.ConfigTarget) -> Target:
    return Target(group=target.group.strip(), agent_id=target.agent_id.strip())


def revision_to_proto(revision: Revision) -> admin_pb2.ConfigRevision:
    return admin_pb2.ConfigRevision(
        target=admin_pb2.ConfigTarget(
            group=revision.target.group, agent_id=revision.target.agent_id
        ),
        revision=revision.revision,
        hash=revision.hash,
        config_toml=revision.toml,
        created_unix_ms=revision.created_ms,
        author=revision.author,
        comment=revision.comment,
    )


def change_summary(before: str, after: str) -> str:
    """The changed lines (``-old; +new``) on one line, bounded, for the audit log."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    lines = list(diff)[2:]  # without the ---/+++ header
    text = "; ".join(line for line in lines if not line.startswith("@@") and line.strip("+-"))
    if len(text) > AUDIT_DIFF_LIMIT:
        text = text[:AUDIT_DIFF_LIMIT] + " … (diff truncated)"
    return text or "(no change in content)"


class ConfigAdmin:
    """Mixin: central configuration RPCs for the Admin servicer."""

    config_store: ConfigStore
    distributor: ConfigDistributor
    registry: Registry
    sessions: Sessions

    @admin_rpc
    async def SetConfig(
        self, request: admin_pb2.SetConfigRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ConfigRevision:
        target = target_from_proto(request.target)
        actor = f"admin:{calling_admin()}"
        before = await self._current_text(target)
        change = await asyncio.to_thread(
            self.config_store.set_document, target, request.config_toml, actor, request.comment
        )
        await self._announce(change, actor, "config.set", before)
        assert change.revision is not None
        return revision_to_proto(change.revision)

    @admin_rpc
    async def GetConfig(
        self, request: admin_pb2.ConfigTarget, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ConfigRevision:
        revision = await asyncio.to_thread(self.config_store.current, target_from_proto(request))
        return revision_to_proto(revision)

    @admin_rpc
    async def ConfigHistory(
        self, request: admin_pb2.ConfigTarget, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ConfigHistoryResponse:
        """The first page of the history (``ConfigHistoryPage`` goes on)."""
        return await self._history_page(target_from_proto(request), DEFAULT_HISTORY_LIMIT, None)

    @admin_rpc
    async def ConfigHistoryPage(
        self, request: admin_pb2.ConfigHistoryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ConfigHistoryResponse:
        limit = bounded(
            "limit (--limit)", present(request, "limit"), DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT
        )
        before: int | None = None
        if request.page_token:
            token = request.page_token.strip()
            if not token.isdigit() or not 1 <= int(token) <= MAX_REVISION:
                raise ConfigError(f"page_token {token[:40]!r} is not one this manager gave")
            before = int(token)
        return await self._history_page(target_from_proto(request.target), limit, before)

    async def _history_page(
        self, target: Target, limit: int, before: int | None
    ) -> admin_pb2.ConfigHistoryResponse:
        """Up to ``limit`` revisions, fewer if they would pass ``RESPONSE_BUDGET_BYTES``; the
        token names the revision to continue below."""
        rows = await asyncio.to_thread(self.config_store.history, target, limit + 1, before)
        response = admin_pb2.ConfigHistoryResponse()
        size = 0
        for revision in rows[:limit]:
            message = revision_to_proto(revision)
            size += message.ByteSize()
            if response.revisions and size > RESPONSE_BUDGET_BYTES:
                break
            response.revisions.append(message)
        if len(response.revisions) < len(rows):
            response.next_page_token = str(response.revisions[-1].revision)
        return response

    @admin_rpc
    async def RollbackConfig(
        self,
        request: admin_pb2.RollbackConfigRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> admin_pb2.ConfigRevision:
        target = target_from_proto(request.target)
        actor = f"admin:{calling_admin()}"
        before = await self._current_text(target)
        change = await asyncio.to_thread(
            self.config_store.rollback, target, request.to_revision, actor
        )
        await self._announce(change, actor, "config.rollback", before)
        assert change.revision is not None
        return revision_to_proto(change.revision)

    @admin_rpc
    async def ConfigStatus(
        self, request: admin_pb2.ConfigStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ConfigStatusResponse:
        states = await asyncio.to_thread(self.config_store.statuses, request.agent_id.strip())
        return admin_pb2.ConfigStatusResponse(
            agents=[
                admin_pb2.AgentConfigStatus(
                    agent_id=s.agent_id,
                    name=s.name,
                    desired_revision=s.desired_revision,
                    desired_hash=s.desired_hash,
                    applied_revision=s.applied_revision,
                    state=s.state,
                    error=s.error,
                    updated_unix_ms=s.updated_ms,
                )
                for s in states
            ]
        )

    @admin_rpc
    async def AssignGroup(
        self, request: admin_pb2.AssignGroupRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.AssignGroupResponse:
        actor = f"admin:{calling_admin()}"
        record, change = await asyncio.to_thread(
            self.config_store.assign,
            request.agent_id.strip(),
            request.group.strip(),
            actor,
            unassign=request.unassign,
        )
        self.distributor.push(change.pushes)
        return admin_pb2.AssignGroupResponse(agent=agent_info(record, self.sessions))

    # ---- helpers -------------------------------------------------------------------------

    async def _current_text(self, target: Target) -> str:
        try:
            return (await asyncio.to_thread(self.config_store.current, target)).toml
        except NotFoundError:
            return ""

    async def _announce(self, change: Change, actor: str, action: str, before: str) -> None:
        """Push first (agents should not wait on the audit write), then audit."""
        sent = self.distributor.push(change.pushes)
        revision = change.revision
        assert revision is not None
        detail = (
            f"revision={revision.revision} hash={revision.hash[:12]} "
            f"agents_updated={len(change.pushes)} pushed_now={sent}"
            + (f" comment={revision.comment!r}" if revision.comment else "")
            + " changes: "
            + change_summary(before, revision.toml)
        )
        await asyncio.to_thread(self.registry.audit, actor, action, str(revision.target), detail)
