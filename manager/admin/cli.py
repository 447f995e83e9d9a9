"""`trailwarden admin …`: agents, revocation, tokens, audit — all over the Admin API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from trailwarden.common.cliargs import duration_in, int_in
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin import alerts_cli, config_cli, housekeeping_cli, users_cli
from trailwarden.manager.admin.agent_view import agent_info_json
from trailwarden.manager.admin.certificates_cli import certificate_warnings
from trailwarden.manager.admin.client import (
    RPC_TIMEOUT_SECONDS,
    admin_stub,
    credentials_parent,
)
from trailwarden.manager.admin.limits import (
    DEFAULT_AUDIT_LIMIT,
    MAX_AUDIT_LIMIT,
    MAX_TOKEN_TTL_SECONDS,
    MAX_TOKEN_USES,
)
from trailwarden.manager.admin.source_view import source_line


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
    create.add_argument(
        "--ttl",
        type=duration_in(1, MAX_TOKEN_TTL_SECONDS),
        default=3600.0,
        help="lifetime, 1s..30d, e.g. 30m, 1h, 7d (default 1h)",
    )
    create.add_argument(
        "--uses",
        type=int_in(1, MAX_TOKEN_USES),
        default=1,
        help=f"enrollments allowed, 1..{MAX_TOKEN_USES} (default 1)",
    )
    create.add_argument("--group", default="", help="place enrolled agents in this group")
    create.add_argument(
        "--for-agent",
        default="",
        metavar="NAME",
        help="only an agent of this name may enroll with it; needed to replace a live agent "
        "of that name (agent enroll --force)",
    )
    create.set_defaults(func=_token_create)
    housekeeping_cli.register_token_commands(token_sub)

    audit = sub.add_parser("audit", parents=[common], help="who changed what, when")
    audit.add_argument(
        "--limit",
        type=int_in(1, MAX_AUDIT_LIMIT),
        default=DEFAULT_AUDIT_LIMIT,
        help=f"entries, newest first, 1..{MAX_AUDIT_LIMIT} (default {DEFAULT_AUDIT_LIMIT})",
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
    users_cli.register(sub)
    housekeeping_cli.register(sub)


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
        print(json.dumps([agent_info_json(agent) for agent in response.agents], indent=2))
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
    for line in certificate_warnings(response):
        print(line)
    return 0


def _print_source_problems(agent: admin_pb2.AgentInfo) -> None:
    """Under the table: each source's progress and what it could not collect, so an admin
    sees it without --json."""
    if not agent.status_json:
        return
    status = json.loads(agent.status_json)
    for source in status.get("sources", []):
        print(source_line(agent.name, source))
        name, state = source.get("name"), source.get("state", "")
        failed = int(source.get("objects_failed", 0))
        if source.get("last_error"):
            print(f"  {agent.name}: source {name} {state}: {source['last_error']}")
        refused = int(source.get("records_refused", 0))
        late = int(source.get("objects_late", 0))
        sqs = source.get("sqs")
        if sqs:
            print(f"  {agent.name}: source {name}: {_sqs_counters(sqs)}")
        if failed:
            print(f"  {agent.name}: source {name}: {failed} object(s) could not be collected")
        if refused:
            print(f"  {agent.name}: source {name}: {refused} record(s) refused, their objects kept")
        if failed or refused:
            for problem in source.get("problems", [])[:3]:
                print(f"    {problem.get('where', '')}: {problem.get('reason', '')}")
        if late:
            print(
                f"  {agent.name}: source {name}: {late} object(s) arrived later than its "
                "late_window (collected; see the agent's log)"
            )
    if status.get("fetching_paused"):
        print(
            f"  {agent.name}: fetching paused, spool full "
            f"({status.get('spool_bytes')} of {status.get('spool_limit_bytes')} bytes)"
        )


def _sqs_counters(sqs: dict[str, Any]) -> str:
    """One line of an SQS source's counters (JSON numbers of uint64 fields arrive as text)."""

    def count(name: str) -> int:
        return int(sqs.get(name, 0) or 0)

    return (
        f"messages received {count('messages_received')}, deleted {count('messages_deleted')}, "
        f"returned {count('messages_returned')}, poison {count('messages_poison')}, "
        f"ignored {count('messages_ignored')}, held {count('messages_held')}; "
        f"visibility extensions {count('visibility_extensions')}; "
        f"lag {count('lag_ms') / 1000:.1f}s"
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
    request = admin_pb2.CreateTokenRequest(
        ttl_seconds=max(1, round(args.ttl)),
        uses=args.uses,
        group=args.group,
        for_agent=args.for_agent,
    )
    with admin_stub(args) as stub:
        response = stub.CreateToken(request, timeout=RPC_TIMEOUT_SECONDS)
    name = response.for_agent or "<AGENT-NAME>"
    command = (
        f"trailwarden agent enroll --home /var/lib/trailwarden-agent "
        f"--manager {response.enroll_address} --token {response.token} "
        f"--ca-sha256 {response.ca_sha256} --name {name}"
        + (" --force" if response.for_agent else "")
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
        + (f", only for agent: {response.for_agent}" if response.for_agent else "")
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
