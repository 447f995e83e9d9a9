"""Admin API for groups as a whole: list and remove (a mixin of the Admin servicer).

The rules (what a group is, when removal is refused, what ``force`` does) are in
manager/central/groups.py. A removal pushes the new configs of the agents taken out of the
group, as a group assignment does, and is audited with the calling admin's identity.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.auth import admin_rpc, calling_admin
from trailwarden.manager.central.distributor import ConfigDistributor
from trailwarden.manager.central.groups import list_groups, remove_group
from trailwarden.manager.central.store import ConfigStore


class GroupsAdmin:
    config_store: ConfigStore
    distributor: ConfigDistributor

    @admin_rpc
    async def ListGroups(
        self, request: admin_pb2.ListGroupsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ListGroupsResponse:
        groups = await asyncio.to_thread(list_groups, self.config_store)
        return admin_pb2.ListGroupsResponse(
            groups=[
                admin_pb2.GroupInfo(
                    name=g.name,
                    agents=g.agents,
                    config_revision=g.config_revision,
                    config_updated_unix_ms=g.config_updated_ms,
                )
                for g in groups
            ]
        )

    @admin_rpc
    async def RemoveGroup(
        self, request: admin_pb2.RemoveGroupRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RemoveGroupResponse:
        actor = f"admin:{calling_admin()}"
        removal = await asyncio.to_thread(
            remove_group, self.config_store, request.name.strip(), actor, force=request.force
        )
        self.distributor.push(removal.pushes)
        return admin_pb2.RemoveGroupResponse(
            name=removal.name,
            agents_moved=list(removal.agents_moved),
            revisions_removed=removal.revisions_removed,
        )
