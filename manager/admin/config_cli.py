"""`trailwarden admin config …` and `trailwarden admin agents assign|unassign`.

::

    trailwarden admin config set (--group G | --agent ID) FILE [--comment TEXT]
    trailwarden admin config get (--group G | --agent ID) [--revision N]
    trailwarden admin config diff (--group G | --agent ID) [FILE] [--from N] [--to N]
    trailwarden admin config history (--group G | --agent ID) [--limit N]
    trailwarden admin config rollback (--group G | --agent ID) --to REVISION
    trailwarden admin config status [--agent ID]
    trailwarden admin config import-wazuh ossec.conf [-o FILE] [--group G | --agent ID]
    trailwarden admin agents assign ID --group G
    trailwarden admin agents unassign ID --group G

``assign``/``unassign`` are nested under the existing ``agents`` command (which still lists
agents when given no subcommand). Every listing has ``--json``. ``FILE`` may be ``-`` for stdin.
``diff`` exits 0 when there is no difference and 1 when there is one, like diff(1).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from trailwarden.common.errors import ConfigError, NotFoundError
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.admin.client import RPC_TIMEOUT_SECONDS, admin_stub, credentials_parent


def register(admin_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``config`` (and ``agents assign|unassign``) to ``trailwarden admin``."""
    common = credentials_parent()
    config = admin_subparsers.add_parser("config", help="central configuration for agents")
    sub = config.add_subparsers(dest="config_command", required=True)

    set_ = sub.add_parser("set", parents=[common], help="store a new revision and push it")
    _target(set_)
    set_.add_argument("file", help="central config TOML ('-' for stdin)")
    set_.add_argument("--comment", default="", help="why (kept in history and audit)")
    set_.set_defaults(func=_set)

    get = sub.add_parser("get", parents=[common], help="print the current (or a) revision")
    _target(get)
    get.add_argument("--revision", type=int, default=0, help="an earlier revision")
    get.set_defaults(func=_get)

    diff = sub.add_parser("diff", parents=[common], help="what a file or a revision changes")
    _target(diff)
    diff.add_argument("file", nargs="?", help="compare this file with the current revision")
    diff.add_argument("--from", dest="from_rev", type=int, default=0, help="older revision")
    diff.add_argument("--to", dest="to_rev", type=int, default=0, help="newer revision")
    diff.set_defaults(func=_diff)

    history = sub.add_parser("history", parents=[common], help="revisions, newest first")
    _target(history)
    history.add_argument(
        "--limit", type=int, default=20, help="newest revisions to show (default 20)"
    )
    history.set_defaults(func=_history)

    rollback = sub.add_parser(
        "rollback", parents=[common], help="make an earlier revision current again"
    )
    _target(rollback)
    rollback.add_argument(
        "--to",
        dest="to_rev",
        type=int,
        required=True,
        metavar="REVISION",
        help="the revision whose content becomes current again",
    )
    rollback.set_defaults(func=_rollback)

    status = sub.add_parser("status", parents=[common], help="desired vs applied, per agent")
    status.add_argument("--agent", default="", metavar="ID", help="only this agent")
    status.set_defaults(func=_status)

    wazuh = sub.add_parser(
        "import-wazuh", parents=[common], help="convert ossec.conf aws-s3 wodles to central TOML"
    )
    wazuh.add_argument("ossec_conf", type=Path, help="a Wazuh ossec.conf holding an aws-s3 wodle")
    wazuh.add_argument("-o", "--output", type=Path, help="write the TOML here (default stdout)")
    where = wazuh.add_mutually_exclusive_group()
    where.add_argument("--group", help="also set it as the group's config")
    where.add_argument("--agent", metavar="ID", help="also set it as the agent's config")
    wazuh.set_defaults(func=_import_wazuh)

    # Nested under the existing `agents` command, which has --credentials/--json itself: here
    # they default to "not given" so that `agents --credentials F assign …` keeps F.
    nested = argparse.ArgumentParser(add_help=False)
    nested.add_argument(
        "--credentials",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="admin credentials bundle (as for `admin agents`)",
    )
    nested.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    agents = admin_subparsers.choices["agents"]
    agents_sub = agents.add_subparsers(dest="agents_command", required=False, metavar="COMMAND")
    for name, unassign in (("assign", False), ("unassign", True)):
        parser = agents_sub.add_parser(
            name, parents=[nested], help=f"{name} an agent {'from' if unassign else 'to'} a group"
        )
        parser.add_argument("agent_id", help="the agent (an ID from `admin agents`)")
        parser.add_argument("--group", required=True, help="the group")
        parser.set_defaults(func=_assign, unassign=unassign)


def _target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--group", help="a group of agents")
    group.add_argument("--agent", metavar="ID", help="one agent (its overrides)")


def _target_proto(args: argparse.Namespace) -> admin_pb2.ConfigTarget:
    return admin_pb2.ConfigTarget(group=args.group or "", agent_id=args.agent or "")


def _to_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _when(ms: int) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _describe(revision: admin_pb2.ConfigRevision) -> str:
    target = revision.target
    who = f"group {target.group}" if target.group else f"agent {target.agent_id}"
    return f"revision {revision.revision} of {who} ({revision.hash[:12]})"


# ---- handlers ------------------------------------------------------------------------------


def _set(args: argparse.Namespace) -> int:
    text = _read(args.file)
    with admin_stub(args) as stub:
        revision = stub.SetConfig(
            admin_pb2.SetConfigRequest(
                target=_target_proto(args), config_toml=text, comment=args.comment
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    if args.json:
        print(json.dumps(_to_dict(revision), indent=2))
    else:
        print(f"stored {_describe(revision)}; connected agents receive it now")
        print("see `trailwarden admin config status` for what each agent applied")
    return 0


def _fetch(stub: Any, args: argparse.Namespace, number: int) -> admin_pb2.ConfigRevision:
    """Revision ``number`` of the target (0: the current one)."""
    target = _target_proto(args)
    if not number:
        current: admin_pb2.ConfigRevision = stub.GetConfig(target, timeout=RPC_TIMEOUT_SECONDS)
        return current
    history = stub.ConfigHistory(target, timeout=RPC_TIMEOUT_SECONDS)
    revision: admin_pb2.ConfigRevision
    for revision in history.revisions:
        if revision.revision == number:
            return revision
    raise NotFoundError(f"revision {number} is not in the history of this target")


def _get(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        revision = _fetch(stub, args, args.revision)
    if args.json:
        print(json.dumps(_to_dict(revision), indent=2))
    else:
        print(f"# {_describe(revision)}, by {revision.author} at {_when(revision.created_unix_ms)}")
        sys.stdout.write(revision.config_toml)
    return 0


def _diff(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        if args.file:
            old = _fetch(stub, args, args.from_rev)
            before, after = old.config_toml, _read(args.file)
            names = (f"revision {old.revision}", args.file)
        else:
            new = _fetch(stub, args, args.to_rev)
            from_rev = args.from_rev
            if not from_rev:
                history = stub.ConfigHistory(_target_proto(args), timeout=RPC_TIMEOUT_SECONDS)
                older = [r.revision for r in history.revisions if r.revision < new.revision]
                from_rev = max(older, default=0)
            before = _fetch(stub, args, from_rev).config_toml if from_rev else ""
            after = new.config_toml
            names = (f"revision {from_rev or 'none'}", f"revision {new.revision}")
    lines = list(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=names[0],
            tofile=names[1],
        )
    )
    if args.json:
        print(json.dumps({"from": names[0], "to": names[1], "diff": "".join(lines)}, indent=2))
    else:
        sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    return 1 if lines else 0


def _history(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.ConfigHistory(_target_proto(args), timeout=RPC_TIMEOUT_SECONDS)
    revisions = list(response.revisions)[: args.limit]
    if args.json:
        print(json.dumps([_to_dict(r) for r in revisions], indent=2))
        return 0
    rows = [
        [str(r.revision), _when(r.created_unix_ms), r.author, r.hash[:12], r.comment or "-"]
        for r in revisions
    ]
    print(_table(rows, ["REVISION", "WHEN (UTC)", "WHO", "HASH", "COMMENT"]))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        revision = stub.RollbackConfig(
            admin_pb2.RollbackConfigRequest(target=_target_proto(args), to_revision=args.to_rev),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    if args.json:
        print(json.dumps(_to_dict(revision), indent=2))
    else:
        print(f"stored {_describe(revision)} with the content of revision {args.to_rev}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.ConfigStatus(
            admin_pb2.ConfigStatusRequest(agent_id=args.agent), timeout=RPC_TIMEOUT_SECONDS
        )
    if args.json:
        print(json.dumps([_to_dict(a) for a in response.agents], indent=2))
        return 0
    rows = [
        [
            a.agent_id,
            a.name,
            str(a.desired_revision or "-"),
            str(a.applied_revision or "-"),
            a.state,
            _when(a.updated_unix_ms),
            a.error or "",
        ]
        for a in response.agents
    ]
    print(_table(rows, ["ID", "NAME", "DESIRED", "APPLIED", "STATE", "WHEN (UTC)", "ERROR"]))
    return 0


def _import_wazuh(args: argparse.Namespace) -> int:
    from trailwarden.manager.central.wazuh_import import import_wazuh_file

    result = import_wazuh_file(args.ossec_conf)
    if args.output:
        args.output.write_text(result.toml)
    elif not args.json:
        sys.stdout.write(result.toml)
    for line in result.not_carried:
        print(f"not carried over: {line}", file=sys.stderr)
    stored = None
    if args.group or args.agent:
        with admin_stub(args) as stub:
            stored = stub.SetConfig(
                admin_pb2.SetConfigRequest(
                    target=_target_proto(args),
                    config_toml=result.toml,
                    comment=f"imported from {args.ossec_conf.name}",
                ),
                timeout=RPC_TIMEOUT_SECONDS,
            )
        print(f"stored {_describe(stored)}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "toml": result.toml,
                    "sources": result.sources,
                    "not_carried": list(result.not_carried),
                    "stored": _to_dict(stored) if stored else None,
                },
                indent=2,
            )
        )
    return 0


def _assign(args: argparse.Namespace) -> int:
    with admin_stub(args) as stub:
        response = stub.AssignGroup(
            admin_pb2.AssignGroupRequest(
                agent_id=args.agent_id, group=args.group, unassign=args.unassign
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    agent = response.agent
    if args.json:
        print(json.dumps(_to_dict(agent), indent=2))
    else:
        print(f"agent {agent.agent_id} ({agent.name}) groups: {', '.join(agent.groups) or '-'}")
    return 0
