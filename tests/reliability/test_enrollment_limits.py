"""The unauthenticated enrollment port: bounded memory, and no name taken over."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import grpc
import pytest

from tests.fixtures.system import ManagerProcess, run_cli
from tests.reliability.processes import new_token
from trailwarden.agent.enroll import enroll
from trailwarden.agent.identity import AgentIdentity
from trailwarden.common import channels
from trailwarden.common.errors import TokenError
from trailwarden.common.wire import enrollment_pb2, enrollment_pb2_grpc

AREA = "Adversarial"
MiB = 1024 * 1024


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_eight_concurrent_60_mib_enrollments_are_refused_fast_with_bounded_memory(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """Eight concurrent Enroll calls, each with a 60 MiB CSR, no token and no certificate, to a
    manager process: every one is refused RESOURCE_EXHAUSTED within seconds (the 64 KiB request
    cap acts on the message's length prefix), the manager's RSS grows by less than 50 MiB at its
    peak (it went from 100 to 929 MiB before), and a real enrollment works right after."""
    manager_process.start()
    home = manager_process.home
    assert manager_process.proc is not None
    pid = manager_process.proc.pid
    enroll(tmp_path / "warm", home.enroll_address, new_token(home), home.ca_fingerprint, "warm-up")
    before = _rss(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss(pid))
            time.sleep(0.02)

    ca_pem = (home.path / "pki" / "ca.pem").read_bytes()
    huge = b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"A" * (60 * MiB)
    outcomes: list[grpc.StatusCode | None] = []

    def attack() -> None:
        channel = grpc.secure_channel(
            home.enroll_address,
            grpc.ssl_channel_credentials(root_certificates=ca_pem),
            options=[*channels.channel_options("localhost"), ("grpc.max_send_message_length", -1)],
        )
        try:
            enrollment_pb2_grpc.EnrollmentStub(channel).Enroll(
                enrollment_pb2.EnrollRequest(token="tw1_x", name="attacker", csr_pem=huge),
                timeout=60,
            )
            outcomes.append(None)
        except grpc.RpcError as exc:
            outcomes.append(exc.code())
        finally:
            channel.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    attackers = [threading.Thread(target=attack) for _ in range(8)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join(90)
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    done.set()
    sampler.join(5)
    assert outcomes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 8, outcomes
    assert elapsed < 30, f"refusing took {elapsed:.1f}s"
    assert peak[0] - before < 50 * MiB, f"RSS {before / MiB:.0f} -> {peak[0] / MiB:.0f} MiB"
    enroll(tmp_path / "after", home.enroll_address, new_token(home), home.ca_fingerprint, "after")


def test_a_live_agents_name_is_not_taken_over_without_a_token_for_it(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """`agent enroll --name <a live agent> --force` with a fresh ordinary token is refused
    (the live agent keeps its certificate, the attempt is audited as agent.replace.refused); a
    token an admin created with `admin token create --for-agent NAME` replaces it (audited as
    agent.replace), and that token cannot enroll any other name."""
    manager_process.start()
    home = manager_process.home
    enroll(tmp_path / "victim", home.enroll_address, new_token(home), home.ca_fingerprint, "db-1")
    victim = AgentIdentity.load(tmp_path / "victim").agent_id
    attack = run_cli(
        "agent",
        "enroll",
        "--home",
        str(tmp_path / "thief"),
        "--manager",
        home.enroll_address,
        "--token",
        new_token(home),
        "--ca-sha256",
        home.ca_fingerprint,
        "--name",
        "db-1",
        "--force",
    )
    assert attack.returncode != 0
    assert "needs a token issued for that name" in attack.stderr
    assert "Traceback" not in attack.stderr
    credentials = str(home.credentials)
    agents = run_cli("admin", "agents", "--json", "--credentials", credentials)
    assert '"revoked"' not in agents.stdout and victim in agents.stdout

    created = run_cli(
        "admin", "token", "create", "--for-agent", "db-1", "--json", "--credentials", credentials
    )
    assert created.returncode == 0, created.stderr
    named = json.loads(created.stdout)
    assert named["for_agent"] == "db-1" and "--name db-1 --force" in named["enroll_command"]
    with pytest.raises(TokenError, match="for agent 'db-1' only"):
        enroll(tmp_path / "other", home.enroll_address, named["token"], home.ca_fingerprint, "x-2")
    enroll(tmp_path / "new", home.enroll_address, named["token"], home.ca_fingerprint, "db-1", True)
    audit = run_cli("admin", "audit", "--json", "--credentials", credentials)
    actions = [entry["action"] for entry in json.loads(audit.stdout)]
    assert "agent.replace.refused" in actions and "agent.replace" in actions
    assert AgentIdentity.load(tmp_path / "new").agent_id != victim
