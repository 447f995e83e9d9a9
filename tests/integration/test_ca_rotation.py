"""CA rotation with real processes: `trailwarden manager run` and `trailwarden agent run` as
subprocesses over mutual TLS on loopback, the CLI as a subprocess.

The streaming agent renews onto the new CA over its link without re-enrolling (same process,
same agent ID), keeps streaming (records written after the renewal arrive), `ca finish` is
refused while an agent still holds a certificate of the retiring CA and lists it, and after
`ca finish --force` that agent is refused while the renewed one keeps delivering.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from tests.fixtures.aws import make_record
from tests.fixtures.system import (
    CLI,
    ManagerHome,
    ManagerProcess,
    run_cli,
    start_link,
    wait_until,
)
from trailwarden.agent.enroll import enroll
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.spool import Spool
from trailwarden.common import channels, tls
from trailwarden.common.wire import link_pb2, link_pb2_grpc
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.store.sqlite.database import Database

WAIT_SECONDS = 60.0
"""Two subprocesses on a loaded machine: a renewal takes the 5 s sweep plus a reconnect."""


@pytest.fixture
def manager(manager_process: ManagerProcess) -> ManagerProcess:
    manager_process.start()
    return manager_process


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _enroll(home: ManagerHome, path: Path, name: str) -> Path:
    database = Database(home.path / "manager.db")
    try:
        token = Registry(database).create_token(3600, 1, "", "test").token
    finally:
        database.close()
    enroll(path, home.enroll_address, token, home.ca_fingerprint, name)
    return path


def _write_events(folder: Path, name: str, count: int) -> set[str]:
    records = [make_record() for _ in range(count)]
    (folder / name).write_text(json.dumps({"Records": records}))
    return {r["eventID"] for r in records}


def _stored(home: ManagerHome) -> set[str]:
    db = sqlite3.connect(home.path / "manager.db", timeout=30)
    try:
        return {r[0] for r in db.execute("SELECT event_key FROM seen_events")}
    finally:
        db.close()


def _eventually(predicate: Callable[[], bool], what: str) -> None:
    wait_until(predicate, what, timeout=WAIT_SECONDS)


def _issuer(agent_home: Path, cas_pem: bytes) -> str:
    cert = tls.load_cert((agent_home / "agent.pem").read_bytes())
    issuer = tls.issuer_among(cert, tls.load_certs(cas_pem))
    return tls.fingerprint(issuer) if issuer else ""


def _connect_with(agent_home: Path, address: str) -> grpc.StatusCode | None:
    """Open a link with the identity in ``agent_home``; the failure code, or None if welcomed."""
    identity = AgentIdentity.load(agent_home)
    credentials = channels.client_channel_credentials(
        identity.ca_pem, identity.cert_pem, identity.key_pem
    )
    hello = link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="test", hostname="h"))
    with grpc.secure_channel(address, credentials, options=channels.channel_options()) as channel:
        try:
            for message in link_pb2_grpc.AgentLinkStub(channel).Connect(iter([hello]), timeout=10):
                if message.WhichOneof("body") == "welcome":
                    return None
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.UNKNOWN


def test_ca_rotation_renews_a_streaming_agent_over_its_link(
    manager: ManagerProcess,
    manager_home: ManagerHome,
    agent_process: list[subprocess.Popen[bytes]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    pki = manager_home.path / "pki"
    old_ca = (pki / "ca.pem").read_bytes()
    streaming = _enroll(manager_home, tmp_path / "agent-stream", "stream-1")
    # An agent that cannot renew (a link without a renewer, like an agent older than this
    # version): connected through the whole rotation, on the retiring CA to the end.
    stale = _enroll(manager_home, tmp_path / "agent-stale", "stale-1")
    stale_link = start_link(
        stale, manager_home.link_address, Spool(stale / "spool.db", 10 * 1024**2)
    )
    request.addfinalizer(stale_link.close)
    assert stale_link.client.connected.wait(30)
    agent_id = AgentIdentity.load(streaming).agent_id
    folder = tmp_path / "events"
    folder.mkdir()
    config = streaming / "agent.toml"
    config.write_text(
        config.read_text()
        + f'\n[[sources]]\ntype = "directory"\nname = "events"\npath = "{folder}"\n'
        + 'interval = "1s"\n'
    )
    with (tmp_path / "agent.log").open("ab") as log:
        agent = subprocess.Popen(
            [*CLI, "agent", "run", "--home", str(streaming)], stdout=log, stderr=log
        )
    agent_process.append(agent)
    before = _write_events(folder, "before.json", 3)
    _eventually(lambda: before <= _stored(manager_home), "records sent before the rotation")

    rotated = run_cli(
        "manager", "ca", "rotate", "--home", str(manager_home.path), "--overlap", "7d"
    )
    assert rotated.returncode == 0, rotated.stderr
    new_ca = (pki / "ca.pem").read_bytes()
    new_fp = tls.fingerprint(new_ca)
    assert new_fp != tls.fingerprint(old_ca) and new_fp in rotated.stdout
    assert stat.S_IMODE((pki / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((pki / "ca-retiring.key").stat().st_mode) == 0o600

    # The running agent is offered a renewal, makes a new key, gets a certificate of the new
    # CA over its link and reconnects with it: same process, same ID, no enrollment.
    _eventually(lambda: _issuer(streaming, new_ca) == new_fp, "the agent's renewal onto the new CA")
    assert agent.poll() is None
    renewed = AgentIdentity.load(streaming)
    assert renewed.agent_id == agent_id
    assert stat.S_IMODE((streaming / "agent.key").stat().st_mode) == 0o600
    assert len(tls.load_certs(renewed.ca_pem)) == 2  # trusts both CAs during the overlap
    after = _write_events(folder, "after.json", 4)
    _eventually(lambda: after <= _stored(manager_home), "records sent after the renewal")

    # Enrolled during the overlap (pinning the retiring CA, which the server certificate still
    # comes from): a certificate of the new CA, and trust in both, so it survives `ca finish`.
    late = _enroll(manager_home, tmp_path / "agent-late", "late-1")
    assert _issuer(late, new_ca) == new_fp
    assert len(tls.load_certs(AgentIdentity.load(late).ca_pem)) == 2

    env = {"TRAILWARDEN_CREDENTIALS": str(manager_home.credentials)}
    listed = run_cli("admin", "agents", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "CA rotation in progress" in listed.stdout
    assert "still on the retiring CA: stale-1" in listed.stdout

    # Not finished while an agent still holds a certificate of the retiring CA: it is listed.
    refused = run_cli("manager", "ca", "finish", "--home", str(manager_home.path))
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "stale-1" in refused.stdout
    assert "stream-1" not in refused.stdout and "late-1" not in refused.stdout
    assert (pki / "rotation.json").exists()

    forced = run_cli("manager", "ca", "finish", "--home", str(manager_home.path), "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert not (pki / "ca-retiring.key").exists() and not (pki / "rotation.json").exists()
    server = tls.load_cert((pki / "server.pem").read_bytes())
    assert tls.issuer_among(server, tls.load_certs(new_ca)) is not None

    # The retiring CA's certificates are refused from now on; the renewed agent keeps going
    # (it trusts the new CA, so it accepts the new server certificate too).
    # Its open stream is closed by the manager, and reconnecting fails at the TLS handshake.
    _eventually(lambda: not stale_link.client.connected.is_set(), "the stale stream's end")
    assert stale_link.client.sessions == 1
    assert _connect_with(stale, manager_home.link_address) == grpc.StatusCode.UNAVAILABLE
    last = _write_events(folder, "finished.json", 2)
    _eventually(lambda: last <= _stored(manager_home), "records sent after ca finish")
    assert _connect_with(streaming, manager_home.link_address) is None
    assert _connect_with(late, manager_home.link_address) is None
    # ... and it is moved to a bundle of the new CA alone.
    _eventually(
        lambda: len(tls.load_certs(AgentIdentity.load(streaming).ca_pem)) == 1,
        "the agent's bundle to drop the retired CA",
    )
    assert agent.poll() is None
    assert run_cli("admin", "agents", env=env).returncode == 0  # admin credentials follow

    database = Database(manager_home.path / "manager.db")
    try:
        actions = [entry.action for entry in Registry(database).audit_entries(500)]
    finally:
        database.close()
    assert {"manager.ca.rotate", "manager.ca.finish", "agent.cert.renew"} <= set(actions)
