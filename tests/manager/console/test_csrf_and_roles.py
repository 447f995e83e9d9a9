"""CSRF on every state-changing request, and a viewer refused changes by the server itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.fixtures.console import Console

PASSWORD = "correct horse battery staple"


def test_a_change_without_or_with_a_wrong_csrf_token_is_refused_and_audited(
    console: Console, enrolled_agent: Callable[[str], Path]
) -> None:
    enrolled_agent("edge-1")
    agent_id = console.running.server.registry.list_agents()[0].id
    console.add_user("alice", "admin", PASSWORD)
    client = console.client()
    client.login("alice", PASSWORD)
    path = f"/api/agents/{agent_id}/revoke"
    missing = client.request("POST", path)
    assert missing.status == 403
    assert "CSRF token missing" in missing.json()["error"]
    wrong = client.request("POST", path, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status == 403 and "CSRF token incorrect" in wrong.json()["error"]
    # A token of another session is as wrong as a made-up one.
    other = console.client()
    other.login("alice", PASSWORD)
    foreign = client.request("POST", path, headers={"X-CSRF-Token": other.csrf()})
    assert foreign.status == 403
    assert console.running.server.registry.get(agent_id).state == "active"
    no_logout = client.request("POST", "/logout", form={})
    assert no_logout.status == 403
    assert client.request("GET", "/").status == 200  # still logged in
    refusals = console.audit("console.csrf_refused")
    assert len(refusals) == 4 and all(e.actor == "console:alice" for e in refusals)
    assert f"POST {path}: CSRF token missing address=127.0.0.1" in [e.detail for e in refusals]


def test_the_login_form_needs_its_own_token(console: Console) -> None:
    console.add_user("alice", "admin", PASSWORD)
    client = console.client()
    no_form = client.request(
        "POST", "/login", form={"username": "alice", "password": PASSWORD, "csrf_token": "abc"}
    )
    assert no_form.status == 403
    assert "__Host-tw_session" not in client.cookies
    assert console.audit("console.csrf_refused")[0].detail.startswith("POST /login")


def test_a_viewer_is_refused_a_revoke_through_the_api_and_an_admin_is_not(
    console: Console, enrolled_agent: Callable[[str], Path]
) -> None:
    enrolled_agent("edge-1")
    registry = console.running.server.registry
    agent_id = registry.list_agents()[0].id
    console.add_user("victor", "viewer", PASSWORD)
    console.add_user("alice", "admin", PASSWORD)
    viewer = console.client()
    viewer.login("victor", PASSWORD)
    path = f"/api/agents/{agent_id}/revoke"
    refused = viewer.request("POST", path, headers={"X-CSRF-Token": viewer.csrf()})
    assert refused.status == 403
    assert refused.json()["error"] == f"POST {path}: admin role required"
    assert registry.get(agent_id).state == "active"
    denied = console.audit("console.denied")
    assert [e.actor for e in denied] == ["console:victor"]

    admin = console.client()
    admin.login("alice", PASSWORD)
    done = admin.request("POST", path, headers={"X-CSRF-Token": admin.csrf()})
    assert done.status == 200, done.text
    assert done.json() == {
        "agent_id": agent_id,
        "name": "edge-1",
        "state": "revoked",
        "revoked_by": "console:alice",
    }
    assert registry.get(agent_id).state == "revoked"
    revoked = console.audit("agent.revoke")
    assert [(e.actor, e.target, e.detail) for e in revoked] == [
        ("console:alice", agent_id, "address=127.0.0.1")
    ]
    unknown = admin.request(
        "POST", "/api/agents/no-such-agent/revoke", headers={"X-CSRF-Token": admin.csrf()}
    )
    assert unknown.status == 404 and "no-such-agent" in unknown.json()["error"]
