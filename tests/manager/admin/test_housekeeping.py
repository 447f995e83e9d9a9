"""Housekeeping over the real Admin API and CLI (mTLS, a real manager): tokens listed without
their secret and revoked, agents renamed and removed (alerts stay), groups listed and removed;
audited with the admin's certificate identity (admin-only: tests/manager/link/test_link_auth)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.system import RunningManager, run_cli, start_link
from trailwarden.agent.enroll import enroll
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.spool import Spool
from trailwarden.common import tls
from trailwarden.common.errors import NotFoundError, TokenError
from trailwarden.common.model import SourceMeta

PROD = '[[sources]]\ntype = "cloudtrail"\nname = "prod"\nbucket = "org-trail"\n'
SOURCE = SourceMeta("trail", "bucket", "AWSLogs/111122223333/x.json.gz", "111122223333")


def _env(running_manager: RunningManager) -> dict[str, str]:
    return {"TRAILWARDEN_CREDENTIALS": str(running_manager.home.credentials)}


def _admin(running_manager: RunningManager, *args: str) -> Any:
    return run_cli("admin", *args, env=_env(running_manager))


def _admin_json(running_manager: RunningManager, *args: str) -> Any:
    result = _admin(running_manager, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _admin_identity(running_manager: RunningManager) -> str:
    bundle = tls.AdminBundle.load(running_manager.home.credentials)
    found = tls.cert_identity(tls.load_cert(bundle.cert_pem))
    assert found is not None
    return f"admin:{found[1]}"


def _audit(running_manager: RunningManager, action: str) -> list[dict[str, Any]]:
    return [e for e in _admin_json(running_manager, "audit") if e["action"] == action]


def _login_record() -> bytes:
    return json.dumps(
        {
            "eventVersion": "1.08",
            "eventID": str(uuid.uuid4()),
            "eventTime": "2026-11-01T10:00:00Z",
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "recipientAccountId": "111122223333",
            "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"},
            "responseElements": {"ConsoleLogin": "Success"},
        }
    ).encode()


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_tokens_are_listed_by_id_never_the_token_and_revoked(
    running_manager: RunningManager, tmp_path: Path
) -> None:
    created = _admin_json(
        running_manager, "token", "create", "--uses", "3", "--group", "web", "--for-agent", "w1"
    )
    secret = created["token"]
    other = running_manager.token()
    listed = _admin(running_manager, "token", "list")
    as_json = _admin(running_manager, "token", "list", "--json")
    assert listed.returncode == 0 and as_json.returncode == 0, listed.stderr + as_json.stderr
    for output in (listed.stdout, as_json.stdout):
        assert secret not in output and other not in output
        assert secret[4:16] not in output  # not even a piece of the secret part
    tokens = json.loads(as_json.stdout)
    assert len(tokens) == 2
    (mine,) = [t for t in tokens if t["group"] == "web"]
    assert mine["for_agent"] == "w1" and mine["uses_left"] == 3 and mine["uses_total"] == 3
    assert mine["state"] == "usable"
    assert mine["created_by"] == _admin_identity(running_manager)
    assert mine["token_id"] in listed.stdout and "w1" in listed.stdout

    revoked = _admin(running_manager, "token", "revoke", mine["token_id"][:8])
    assert revoked.returncode == 0, revoked.stderr
    assert mine["token_id"] in revoked.stdout
    with pytest.raises(TokenError, match="not recognised"):
        enroll(
            tmp_path / "w1",
            running_manager.home.enroll_address,
            secret,
            running_manager.home.ca_fingerprint,
            "w1",
        )
    remaining = _admin_json(running_manager, "token", "list")
    assert [t["token_id"] for t in remaining] != [mine["token_id"]] and len(remaining) == 1
    (entry,) = _audit(running_manager, "token.revoke")
    assert entry["actor"] == _admin_identity(running_manager)
    assert entry["target"] == mine["token_id"]

    again = _admin(running_manager, "token", "revoke", mine["token_id"])
    assert again.returncode == 1 and "no enrollment token" in again.stderr
    bad = _admin(running_manager, "token", "revoke", secret)
    assert bad.returncode == 2 and "hex digits" in bad.stderr and secret not in bad.stderr


def test_rename_follows_into_alerts_and_remove_keeps_them(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> None:
    home = enrolled_agent("web-1")
    enrolled_agent("web-2")
    identity = AgentIdentity.load(home)
    spool = Spool(tmp_path / "spool.db", 1 << 30)
    link = start_link(home, running_manager.home.link_address, spool)
    try:
        _wait(lambda: running_manager.server.sessions.is_connected(identity.agent_id))
        taken = _admin(running_manager, "agent", "rename", identity.agent_id, "web-2")
        assert taken.returncode == 2 and "already the name of agent" in taken.stderr
        renamed = _admin(running_manager, "agent", "rename", identity.agent_id, "edge-1")
        assert renamed.returncode == 0, renamed.stderr
        assert "web-1 -> edge-1" in renamed.stdout
        spool.put(SOURCE, [_login_record()])
        _wait(lambda: spool.stats().batches == 0)
        alerts = _admin_json(running_manager, "alerts", "--limit", "50")
        assert alerts and {a["agent_name"] for a in alerts} == {"edge-1"}
        assert {a["agent_id"] for a in alerts} == {identity.agent_id}  # the CN stays the ID
        agents = _admin(running_manager, "agents")
        assert "edge-1" in agents.stdout and "web-1" not in agents.stdout

        removed = _admin_json(running_manager, "agent", "remove", identity.agent_id)
        assert removed["revoked"] is True and removed["agent"]["name"] == "edge-1"
        _wait(lambda: not link.client.connected.is_set())
        with pytest.raises(NotFoundError):
            running_manager.server.registry.get(identity.agent_id)
        listed = _admin_json(running_manager, "agents")
        assert [a["name"] for a in listed] == ["web-2"]
        kept = _admin_json(running_manager, "alerts", "--limit", "50")
        assert len(kept) == len(alerts)  # its alerts stay
        time.sleep(1.5)
        assert not link.client.connected.is_set()  # reconnects are refused
    finally:
        link.close()
        spool.close()
    actions = {e["action"]: e for e in _admin_json(running_manager, "audit")}
    for action in ("agent.rename", "agent.revoke", "agent.remove"):
        assert actions[action]["actor"] == _admin_identity(running_manager)
        assert actions[action]["target"] == identity.agent_id
    assert actions["agent.rename"]["detail"] == "web-1 -> edge-1"
    missing = _admin(running_manager, "agent", "remove", identity.agent_id)
    assert missing.returncode == 1 and "no agent with ID" in missing.stderr


def test_groups_listed_and_removed_only_with_force_while_agents_are_in_them(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    ids = [AgentIdentity.load(enrolled_agent(name)).agent_id for name in ("web-1", "web-2")]
    for agent_id in ids:
        assigned = _admin(running_manager, "agents", "assign", agent_id, "--group", "web")
        assert assigned.returncode == 0, assigned.stderr
    config = running_manager.home.path / "web.toml"
    config.write_text(PROD)
    stored = _admin(running_manager, "config", "set", "--group", "web", str(config))
    assert stored.returncode == 0, stored.stderr
    _admin(running_manager, "config", "set", "--group", "empty", str(config))

    groups = {g["name"]: g for g in _admin_json(running_manager, "group", "list")}
    assert groups["web"]["agents"] == 2 and int(groups["web"]["config_revision"]) >= 1
    assert groups["empty"]["agents"] == 0
    table = _admin(running_manager, "group", "list").stdout
    assert "web" in table and "AGENTS" in table

    refused = _admin(running_manager, "group", "remove", "web")
    assert refused.returncode == 1
    assert "still has 2 agent(s)" in refused.stderr and "--force" in refused.stderr
    assert all("web" in running_manager.server.registry.get(i).groups for i in ids)

    forced = _admin_json(running_manager, "group", "remove", "web", "--force")
    assert sorted(forced["agents_moved"]) == sorted(ids)
    assert forced["revisions_removed"] == 1
    assert all(running_manager.server.registry.get(i).groups == () for i in ids)
    assert [g["name"] for g in _admin_json(running_manager, "group", "list")] == ["empty"]
    assert _admin(running_manager, "group", "remove", "empty").returncode == 0
    gone = _admin(running_manager, "group", "remove", "web")
    assert gone.returncode == 1 and "no group 'web'" in gone.stderr
    entries = _audit(running_manager, "group.remove")
    assert [e["target"] for e in entries] == ["empty", "web"]
    assert entries[1]["actor"] == _admin_identity(running_manager)
    assert "force=True" in entries[1]["detail"]
