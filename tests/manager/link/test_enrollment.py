"""Enrollment over the real service: happy path through the CLI, and every refusal."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.fixtures.system import ManagerProcess, RunningManager, run_cli
from trailwarden.agent.enroll import enroll
from trailwarden.agent.identity import AgentIdentity
from trailwarden.common import tls
from trailwarden.common.errors import CaPinError, EnrollmentError, TokenError


def test_enrollment_happy_path_through_the_cli(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    manager_process.start()
    home = manager_process.home
    env = {"TRAILWARDEN_CREDENTIALS": str(home.credentials)}
    created = run_cli("admin", "token", "create", "--ttl", "10m", "--uses", "1", "--json", env=env)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    assert token["ca_sha256"] == home.ca_fingerprint
    assert f"--manager {home.enroll_address}" in token["enroll_command"]
    assert f"--ca-sha256 {home.ca_fingerprint}" in token["enroll_command"]

    agent_home = tmp_path / "agent"
    enrolled = run_cli(
        "agent",
        "enroll",
        "--home",
        str(agent_home),
        "--manager",
        home.enroll_address,
        "--token",
        token["token"],
        "--ca-sha256",
        token["ca_sha256"],
        "--name",
        "web-1",
    )
    assert enrolled.returncode == 0, enrolled.stderr
    identity = AgentIdentity.load(agent_home)
    cert = tls.load_cert(identity.cert_pem)
    assert tls.cert_identity(cert) == (tls.Role.AGENT, identity.agent_id)
    assert ((agent_home / "agent.key").stat().st_mode & 0o777) == 0o600
    assert (agent_home / "agent.toml").exists()

    listed = run_cli("admin", "agents", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    agents = json.loads(listed.stdout)
    assert [(a["agent_id"], a["name"], a["status"]) for a in agents] == [
        (identity.agent_id, "web-1", "never connected")
    ]

    # Tokens are stored hashed: the token text appears nowhere in the database.
    db = sqlite3.connect(home.path / "manager.db")
    dump = "\n".join(db.iterdump())
    assert token["token"] not in dump
    # The one-time token is used up now.
    again = run_cli(
        "agent",
        "enroll",
        "--home",
        str(tmp_path / "agent2"),
        "--manager",
        home.enroll_address,
        "--token",
        token["token"],
        "--ca-sha256",
        token["ca_sha256"],
        "--name",
        "web-2",
    )
    assert again.returncode != 0
    assert "already used up" in again.stderr
    assert manager_process.terminate() == 0


def test_wrong_token_is_refused(running_manager: RunningManager, tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="not recognised"):
        enroll(
            tmp_path / "a",
            running_manager.home.enroll_address,
            "tw1_not-a-real-token",
            running_manager.home.ca_fingerprint,
            "web-1",
        )


def test_expired_token_is_refused(running_manager: RunningManager, tmp_path: Path) -> None:
    token = running_manager.token(ttl=1)
    time.sleep(1.2)
    with pytest.raises(TokenError, match="expired"):
        enroll(
            tmp_path / "a",
            running_manager.home.enroll_address,
            token,
            running_manager.home.ca_fingerprint,
            "web-1",
        )


def test_one_time_token_cannot_be_reused(running_manager: RunningManager, tmp_path: Path) -> None:
    token = running_manager.token(uses=1)
    enroll(
        tmp_path / "a",
        running_manager.home.enroll_address,
        token,
        running_manager.home.ca_fingerprint,
        "web-1",
    )
    with pytest.raises(TokenError, match="used up"):
        enroll(
            tmp_path / "b",
            running_manager.home.enroll_address,
            token,
            running_manager.home.ca_fingerprint,
            "web-2",
        )


def test_wrong_ca_fingerprint_is_refused_before_anything_is_sent(
    running_manager: RunningManager, tmp_path: Path
) -> None:
    _, other_ca = tls.create_ca("Impostor")
    token = running_manager.token()
    with pytest.raises(CaPinError, match="did not present a CA with SHA-256"):
        enroll(
            tmp_path / "a",
            running_manager.home.enroll_address,
            token,
            tls.fingerprint(other_ca),
            "web-1",
        )
    assert not (tmp_path / "a" / "agent.key").exists()
    # The token was never presented, so it still works with the right pin.
    enroll(
        tmp_path / "a",
        running_manager.home.enroll_address,
        token,
        running_manager.home.ca_fingerprint,
        "web-1",
    )


def test_reenrolling_a_name_needs_force_and_a_token_for_that_name(
    running_manager: RunningManager, tmp_path: Path
) -> None:
    address, pin = running_manager.home.enroll_address, running_manager.home.ca_fingerprint
    enroll(tmp_path / "a", address, running_manager.token(), pin, "web-1")
    with pytest.raises(EnrollmentError, match="already enrolled"):
        enroll(tmp_path / "b", address, running_manager.token(), pin, "web-1")
    first = AgentIdentity.load(tmp_path / "a").agent_id
    with pytest.raises(TokenError, match="needs a token issued for that name"):
        enroll(tmp_path / "b", address, running_manager.token(), pin, "web-1", force=True)
    assert not running_manager.server.registry.get(first).revoked
    registry = running_manager.server.registry
    named = registry.create_token(3600, 1, "", "test", for_agent="web-1").token
    enroll(tmp_path / "b", address, named, pin, "web-1", force=True)
    assert registry.get(first).revoked


def test_token_guessing_is_rate_limited(running_manager: RunningManager, tmp_path: Path) -> None:
    address, pin = running_manager.home.enroll_address, running_manager.home.ca_fingerprint
    for attempt in range(10):
        with pytest.raises(TokenError):
            enroll(tmp_path / f"g{attempt}", address, f"tw1_guess{attempt}", pin, "guess")
    with pytest.raises(EnrollmentError, match="too many failed enrollment attempts"):
        enroll(tmp_path / "g-last", address, running_manager.token(), pin, "guess")
