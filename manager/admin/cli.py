"""`trailwarden admin …`: agents, revocation, tokens, audit — all over the Admin API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from trailwarden.common.timeparse import parse_duration
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin import alerts_cli, config_cli
from trailwarden.manager.admin.client import (
    RPC_TIMEOUT_SECONDS,
    admin_stub,
    credentials_parent,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = subparsers.add_parser("admin", help="administer a manager remotely")
    sub = admin.add_subparsers(dest="admin_command", required=True)
    common = credentials_parent()

    agents = sub.add_parser("agents", parents=[common], help="list agents")
    agents.set_defaults(func=_agents)

    revoke = sub.add_parser("revoke", parents=[common], help="revoke an agent's certificate")
    revoke.add_argument("agent_id", help="the agent to revoke (an ID from `admin agents`)")
    revoke.set_defaults(func=_revoke)

    token = sub.add_parser("token", help="enrollment tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", parents=[common], help="create an enrollment token")
    create.add_argument("--ttl", default="1h", help="lifetime, e.g. 30m, 1h, 7d (default 1h)")
    create.add_argument("--uses", type=int, default=1, help="enrollments allowed (default 1)")
    create.add_argument("--group", default="", help="place enrolled agents in this group")
    create.set_defaults(func=_token_create)

    audit = sub.add_parser("audit", parents=[common], help="who changed what, when")
    audit.add_argument(
        "--limit", type=int, default=100, help="newest entries to show (default 100)"
    )
    audit.set_defaults(func=_audit)

    rules = sub.add_parser("rules", help="the manager's ruleset")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    reload = rules_sub.add_parser(
        "reload",
        parents=[common],
        help="load the configured rules again; swapped in only if they load cleanly",
    )
    reload.set_defaults(func=_rules_reload)

    alerts_cli.register(sub)
    config_cli.register(sub)


def _ms_to_text(ms: int) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _to_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _agents(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.ListAgents(admin_pb2.ListAgentsRequest(), timeout=RPC_TIMEOUT_SECONDS)
    if args.json:
        agents = []
        for agent in response.agents:
            item = _to_dict(agent)
            item["status_detail"] = json.loads(agent.status_json) if agent.status_json else None
            del item["status_json"]
            agents.append(item)
        print(json.dumps(agents, indent=2))
        return 0
    rows = [
        [
            a.agent_id,
            a.name,
            a.status,
            _ms_to_text(a.last_seen_unix_ms),
            a.address or "-",
            a.agent_version or "-",
            ",".join(a.groups) or "-",
            str(a.applied_config_revision or "-"),
        ]
        for a in response.agents
    ]
    print(
        _table(
            rows,
            ["ID", "NAME", "STATUS", "LAST SEEN (UTC)", "ADDRESS", "VERSION", "GROUPS", "CONFIG"],
        )
    )
    for agent in response.agents:
        _print_source_problems(agent)
    return 0


def _print_source_problems(agent: admin_pb2.AgentInfo) -> None:
    """Under the table: what each agent could not collect, so an admin sees it without --json."""
    if not agent.status_json:
        return
    status = json.loads(agent.status_json)
    for source in status.get("sources", []):
        name, state = source.get("name"), source.get("state", "")
        failed = int(source.get("objects_failed", 0))
        if source.get("last_error"):
            print(f"  {agent.name}: source {name} {state}: {source['last_error']}")
        if failed:
            print(f"  {agent.name}: source {name}: {failed} object(s) could not be collected")
            for problem in source.get("problems", [])[:3]:
                print(f"    {problem.get('where', '')}: {problem.get('reason', '')}")
    if status.get("fetching_paused"):
        print(
            f"  {agent.name}: fetching paused, spool full "
            f"({status.get('spool_bytes')} of {status.get('spool_limit_bytes')} bytes)"
        )


def _revoke(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.RevokeAgent(
            admin_pb2.RevokeAgentRequest(agent_id=args.agent_id), timeout=RPC_TIMEOUT_SECONDS
        )
    if args.json:
        print(json.dumps(_to_dict(response.agent), indent=2))
    else:
        print(
            f"revoked agent {response.agent.agent_id} ({response.agent.name}); its "
            f"connection is closed and refused from now on"
        )
    return 0


def _token_create(args: argparse.Namespace) -> int:
    try:
        ttl = int(parse_duration(args.ttl))
    except ValueError as exc:
        print(f"trailwarden: --ttl: {exc}", file=sys.stderr)
        return 2
    with admin_stub(args) as stub:
        response = stub.CreateToken(
            admin_pb2.CreateTokenRequest(ttl_seconds=ttl, uses=args.uses, group=args.group),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    command = (
        f"trailwarden agent enroll --home /var/lib/trailwarden-agent "
        f"--manager {response.enroll_address} --token {response.token} "
        f"--ca-sha256 {response.ca_sha256} --name <AGENT-NAME>"
    )
    if args.json:
        print(json.dumps({**_to_dict(response), "enroll_command": command}, indent=2))
        return 0
    expires = _ms_to_text(response.expires_unix_ms)
    left = max(0, int(response.expires_unix_ms / 1000 - time.time()))
    print(f"token:   {response.token}")
    print(
        f"expires: {expires} UTC (in {left}s), uses: {response.uses}"
        + (f", group: {response.group}" if response.group else "")
    )
    print("enroll an agent with:")
    print(f"  {command}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.Audit(admin_pb2.AuditRequest(limit=args.limit), timeout=RPC_TIMEOUT_SECONDS)
    if args.json:
        print(json.dumps([_to_dict(e) for e in response.entries], indent=2))
        return 0
    rows = [
        [_ms_to_text(e.time_unix_ms), e.actor, e.action, e.target, e.detail]
        for e in response.entries
    ]
    print(_table(rows, ["TIME (UTC)", "WHO", "ACTION", "TARGET", "DETAIL"]))
    return 0


def _rules_reload(args: argparse.Namespace) -> int:
    """Exit 0 when the new ruleset runs, 1 when it was refused (the old one keeps running)."""
    with admin_stub(args) as stub:
        response = stub.ReloadRules(admin_pb2.ReloadRulesRequest(), timeout=RPC_TIMEOUT_SECONDS)
    if args.json:
        print(json.dumps(_to_dict(response), indent=2))
    else:
        print(response.summary)
        for error in response.errors:
            print(f"  {error}", file=sys.stderr)
    return 0 if response.ok else 1
