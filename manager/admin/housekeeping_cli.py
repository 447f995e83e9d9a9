"""`trailwarden admin token list|revoke`, `admin agent remove|rename`, `admin group list|remove`.

Housekeeping over the Admin API, like every admin command: tokens are listed by their ID (a
prefix of the stored hash), never the token; a removed agent is revoked first and its alerts
stay; a renamed agent keeps its ID (the certificate's CN); a group with agents in it is removed
only with ``--force``, which takes the group off them (see manager/central/groups.py).
"""

from __future__ import annotations

import argparse
import json

from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.agent_view import agent_info_json
from trailwarden.manager.admin.client import RPC_TIMEOUT_SECONDS, admin_stub, credentials_parent
from trailwarden.manager.admin.tables import ms_to_text, table, to_dict


def register_token_commands(token_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``list`` and ``revoke`` beside ``admin token create``."""
    common = credentials_parent()
    listing = token_sub.add_parser(
        "list", parents=[common], help="list enrollment tokens (IDs only, never the token)"
    )
    listing.set_defaults(func=_token_list)
    revoke = token_sub.add_parser(
        "revoke", parents=[common], help="revoke an enrollment token: nobody can enroll with it"
    )
    revoke.add_argument(
        "token_id", help="the token's ID from `admin token list` (or its first 8+ hex digits)"
    )
    revoke.set_defaults(func=_token_revoke)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``admin agent remove|rename`` and ``admin group list|remove``."""
    common = credentials_parent()
    agent = sub.add_parser("agent", help="remove or rename one agent")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    remove = agent_sub.add_parser(
        "remove",
        parents=[common],
        help="revoke the agent if live and remove it from the registry (its alerts stay)",
    )
    remove.add_argument("agent_id", help="the agent to remove (an ID from `admin agents`)")
    remove.set_defaults(func=_agent_remove)
    rename = agent_sub.add_parser(
        "rename",
        parents=[common],
        help="give an agent a new name (its ID, the certificate's CN, stays)",
    )
    rename.add_argument("agent_id", help="the agent to rename (an ID from `admin agents`)")
    rename.add_argument(
        "new_name", help="the new name: letters, digits, '.', '_', '-'; unique among live agents"
    )
    rename.set_defaults(func=_agent_rename)

    group = sub.add_parser("group", help="agent groups as a whole")
    group_sub = group.add_subparsers(dest="group_command", required=True)
    listing = group_sub.add_parser(
        "list", parents=[common], help="groups with their agent counts and config revision"
    )
    listing.set_defaults(func=_group_list)
    group_remove = group_sub.add_parser(
        "remove",
        parents=[common],
        help="remove a group and its config document (refused while agents are in it)",
    )
    group_remove.add_argument("name", help="the group to remove")
    group_remove.add_argument(
        "--force",
        action="store_true",
        help="take the group off its agents first (they keep their other groups; one left "
        "with none runs its agent-level config only)",
    )
    group_remove.set_defaults(func=_group_remove)


def _token_list(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.ListTokens(admin_pb2.ListTokensRequest(), timeout=RPC_TIMEOUT_SECONDS)
    if args.json:
        print(json.dumps([to_dict(t) for t in response.tokens], indent=2))
        return 0
    rows = [
        [
            t.token_id,
            t.state,
            t.group or "-",
            t.for_agent or "-",
            f"{t.uses_left}/{t.uses_total}",
            ms_to_text(t.expires_unix_ms),
            ms_to_text(t.created_unix_ms),
            t.created_by or "-",
        ]
        for t in response.tokens
    ]
    header = ["ID", "STATE", "GROUP", "FOR AGENT", "USES LEFT", "EXPIRES (UTC)", "CREATED", "BY"]
    print(table(rows, header))
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.RevokeToken(
            admin_pb2.RevokeTokenRequest(token_id=args.token_id), timeout=RPC_TIMEOUT_SECONDS
        )
    if args.json:
        print(json.dumps(to_dict(response.token), indent=2))
    else:
        print(f"revoked enrollment token {response.token.token_id}; nobody can enroll with it")
    return 0


def _agent_remove(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.RemoveAgent(
            admin_pb2.RemoveAgentRequest(agent_id=args.agent_id), timeout=RPC_TIMEOUT_SECONDS
        )
    agent = response.agent
    if args.json:
        print(json.dumps({"agent": agent_info_json(agent), "revoked": response.revoked}, indent=2))
    else:
        first = "revoked and removed" if response.revoked else "removed"
        print(f"{first} agent {agent.agent_id} ({agent.name}); its alerts stay in the store")
    return 0


def _agent_rename(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.RenameAgent(
            admin_pb2.RenameAgentRequest(agent_id=args.agent_id, new_name=args.new_name),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    if args.json:
        print(
            json.dumps(
                {"agent": agent_info_json(response.agent), "old_name": response.old_name},
                indent=2,
            )
        )
    else:
        print(
            f"renamed agent {response.agent.agent_id}: {response.old_name} -> "
            f"{response.agent.name} (new alerts carry the new name)"
        )
    return 0


def _group_list(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.ListGroups(admin_pb2.ListGroupsRequest(), timeout=RPC_TIMEOUT_SECONDS)
    if args.json:
        print(json.dumps([to_dict(g) for g in response.groups], indent=2))
        return 0
    rows = [
        [
            g.name,
            str(g.agents),
            str(g.config_revision or "-"),
            ms_to_text(g.config_updated_unix_ms),
        ]
        for g in response.groups
    ]
    print(table(rows, ["GROUP", "AGENTS", "CONFIG REVISION", "CONFIG SET (UTC)"]))
    return 0


def _group_remove(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.RemoveGroup(
            admin_pb2.RemoveGroupRequest(name=args.name, force=args.force),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    if args.json:
        print(json.dumps(to_dict(response), indent=2))
        return 0
    print(
        f"removed group {response.name} ({response.revisions_removed} config revision(s)); "
        f"taken off {len(response.agents_moved)} agent(s)"
        + (f": {', '.join(response.agents_moved)}" if response.agents_moved else "")
    )
    return 0
