"""Admin API for web console users (a mixin of the Admin servicer).

AddUser, ListUsers, RemoveUser and SetUserPassword, admin certificate required like every Admin
RPC. The servicer sets ``self.accounts`` (manager/users/accounts.py: the same policy and
hashing the console's login uses). Each change is audited by the user store, in the same
transaction, with the calling admin's identity; removing a user or changing its password ends
its console sessions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.auth import admin_rpc, calling_admin
from trailwarden.manager.users.accounts import Accounts
from trailwarden.manager.users.base import UserRecord


def user_info(record: UserRecord) -> admin_pb2.ConsoleUserInfo:
    return admin_pb2.ConsoleUserInfo(
        name=record.name,
        role=record.role,
        created_unix_ms=record.created_ms,
        created_by=record.created_by,
        password_changed_unix_ms=record.password_changed_ms,
        last_login_unix_ms=record.last_login_ms,
        active_sessions=record.active_sessions,
    )


class UsersAdmin:
    accounts: Accounts

    @admin_rpc
    async def AddUser(
        self, request: admin_pb2.AddUserRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.AddUserResponse:
        actor = f"admin:{calling_admin()}"
        record, password = await asyncio.to_thread(
            self.accounts.add, request.name, request.role, request.password, actor
        )
        return admin_pb2.AddUserResponse(
            user=user_info(record), generated_password=password.generated
        )

    @admin_rpc
    async def ListUsers(
        self, request: admin_pb2.ListUsersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.ListUsersResponse:
        records = await asyncio.to_thread(self.accounts.list)
        return admin_pb2.ListUsersResponse(users=[user_info(r) for r in records])

    @admin_rpc
    async def RemoveUser(
        self, request: admin_pb2.RemoveUserRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> admin_pb2.RemoveUserResponse:
        actor = f"admin:{calling_admin()}"
        ended = await asyncio.to_thread(self.accounts.remove, request.name, actor)
        return admin_pb2.RemoveUserResponse(sessions_ended=ended)

    @admin_rpc
    async def SetUserPassword(
        self,
        request: admin_pb2.SetUserPasswordRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> admin_pb2.SetUserPasswordResponse:
        actor = f"admin:{calling_admin()}"
        ended, password = await asyncio.to_thread(
            self.accounts.set_password, request.name, request.password, actor
        )
        return admin_pb2.SetUserPasswordResponse(
            sessions_ended=ended, generated_password=password.generated
        )
