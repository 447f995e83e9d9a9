"""`trailwarden agent status --home DIR`: the agent on this host, from its files and, when
``[metrics]`` is set, from the running process's ``/readyz``.

Reads the home (identity, certificate expiry, agent.toml) and the spool read-only (what waits
for the manager's acks); never writes anything. Exit 0 when the agent is ready (or, without
``[metrics]``, when its home is usable), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

from trailwarden.agent.config import load_agent_config
from trailwarden.agent.identity import CERT_FILE, AgentIdentity
from trailwarden.common.observability.probe import (
    READY,
    add_status_parser,
    readiness_line,
    readiness_section,
)

EXPIRY_WARNING_DAYS = 30


def add_status_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_status_parser(
        sub, "the agent on this host: identity, spool, readiness", "agent home folder", _status
    )


def _spool_waiting(path: Path) -> dict[str, int]:
    if not path.exists():
        return {"batches": 0, "records": 0, "bytes": 0}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
    try:
        row = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(record_count), 0), COALESCE(SUM(size), 0) "
            "FROM spool_batches"
        ).fetchone()
    except sqlite3.Error:
        return {"batches": -1, "records": -1, "bytes": -1}
    finally:
        conn.close()
    return {"batches": int(row[0]), "records": int(row[1]), "bytes": int(row[2])}


def _certificate_expiry(home: Path) -> dt.datetime:
    from trailwarden.common import tls  # cryptography: only here, never in `agent run`

    return tls.load_cert((home / CERT_FILE).read_bytes()).not_valid_after_utc


def _status(args: argparse.Namespace) -> int:
    config = load_agent_config(args.home)
    identity = AgentIdentity.load(args.home)
    expires = _certificate_expiry(args.home)
    days_left = (expires - dt.datetime.now(dt.UTC)).days
    report: dict[str, Any] = {
        "agent_id": identity.agent_id,
        "name": identity.name,
        "manager": config.manager_address,
        "certificate_expires": expires.isoformat(),
        "certificate_days_left": days_left,
        "sources": [source.name for source in config.sources],
        "spool_waiting": _spool_waiting(config.spool_path),
    }
    readiness = readiness_section(config.metrics)
    if readiness is not None:
        report["readiness"] = readiness
    healthy = days_left > 0 and (readiness is None or readiness["state"] == READY)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if healthy else 1
    waiting = report["spool_waiting"]
    print(f"agent {identity.name} ({identity.agent_id}): {'ok' if healthy else 'NOT OK'}")
    print(f"  manager:      {config.manager_address}")
    warning = "  <- renew soon" if days_left < EXPIRY_WARNING_DAYS else ""
    print(f"  certificate:  expires {expires:%Y-%m-%d} ({days_left} days){warning}")
    print(f"  sources:      {', '.join(report['sources']) or '(none in agent.toml)'}")
    print(
        f"  spool:        {waiting['batches']} batches, {waiting['records']} records, "
        f"{waiting['bytes']} bytes waiting for the manager's acks"
    )
    print(readiness_line(readiness, 14))
    return 0 if healthy else 1
