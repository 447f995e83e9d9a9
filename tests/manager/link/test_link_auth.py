"""Who may open the link and call Admin: identity from certificates, checked every stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from tests.fixtures.pki import ForeignIdentity
from tests.fixtures.system import RunningManager
from trailwarden.agent.identity import AgentIdentity
from trailwarden.common import channels, tls
from trailwarden.common.wire import admin_pb2, admin_pb2_grpc, link_pb2, link_pb2_grpc


def _open_link(address: str, credentials: grpc.ChannelCredentials) -> grpc.RpcError:
    """Try a link stream; return the error the manager ends it with."""
    channel = grpc.secure_channel(
        address, credentials, options=channels.channel_options("localhost")
    )
    try:
        hello = link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="t"))
        responses = link_pb2_grpc.AgentLinkStub(channel).Connect(iter([hello]), timeout=10)
        with pytest.raises(grpc.RpcError) as caught:
            for _ in responses:
                pass
        return caught.value
    finally:
        channel.close()


def test_client_without_certificate_cannot_open_the_link(running_manager: RunningManager) -> None:
    ca_pem = (running_manager.home.path / "pki" / "ca.pem").read_bytes()
    error = _open_link(
        running_manager.home.link_address, channels.client_channel_credentials(ca_pem)
    )
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake itself fails


def test_certificate_from_another_ca_cannot_open_the_link(
    running_manager: RunningManager, foreign_agent_identity: ForeignIdentity
) -> None:
    ca_pem = (running_manager.home.path / "pki" / "ca.pem").read_bytes()
    creds = channels.client_channel_credentials(
        ca_pem, foreign_agent_identity.cert_pem, foreign_agent_identity.key_pem
    )
    error = _open_link(running_manager.home.link_address, creds)
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_revoked_agent_cannot_open_the_link(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    identity = AgentIdentity.load(enrolled_agent("web-1"))
    creds = channels.client_channel_credentials(
        identity.ca_pem, identity.cert_pem, identity.key_pem
    )
    channel = grpc.secure_channel(
        running_manager.home.link_address, creds, options=channels.channel_options("localhost")
    )
    hello = link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="t"))
    stream = link_pb2_grpc.AgentLinkStub(channel).Connect(iter([hello]), timeout=10)
    first = next(stream)
    assert first.welcome.agent_id == identity.agent_id  # before revocation: welcomed
    stream.cancel()
    channel.close()

    running_manager.server.registry.revoke(identity.agent_id, "test")
    error = _open_link(running_manager.home.link_address, creds)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "revoked" in (error.details() or "")


def test_agent_certificate_cannot_call_admin(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    identity = AgentIdentity.load(enrolled_agent("web-1"))
    creds = channels.client_channel_credentials(
        identity.ca_pem, identity.cert_pem, identity.key_pem
    )
    with grpc.secure_channel(
        running_manager.home.link_address, creds, options=channels.channel_options("localhost")
    ) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        for call, request in (
            (stub.ListAgents, admin_pb2.ListAgentsRequest()),
            (stub.CreateToken, admin_pb2.CreateTokenRequest(ttl_seconds=60, uses=1)),
            (stub.RevokeAgent, admin_pb2.RevokeAgentRequest(agent_id=identity.agent_id)),
            # housekeeping (manager/admin/tokens_rpc.py, agents_rpc.py, groups_rpc.py)
            (stub.ListTokens, admin_pb2.ListTokensRequest()),
            (stub.RevokeToken, admin_pb2.RevokeTokenRequest(token_id="0" * 12)),
            (stub.RemoveAgent, admin_pb2.RemoveAgentRequest(agent_id=identity.agent_id)),
            (stub.RenameAgent, admin_pb2.RenameAgentRequest(agent_id=identity.agent_id)),
            (stub.ListGroups, admin_pb2.ListGroupsRequest()),
            (stub.RemoveGroup, admin_pb2.RemoveGroupRequest(name="web", force=True)),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "admin certificate" in (caught.value.details() or "")
    record = running_manager.server.registry.get(identity.agent_id)
    assert not record.revoked and record.name == "web-1"


def test_admin_certificate_cannot_open_the_link(running_manager: RunningManager) -> None:
    bundle = tls.AdminBundle.load(running_manager.home.credentials)
    creds = channels.client_channel_credentials(bundle.ca_pem, bundle.cert_pem, bundle.key_pem)
    error = _open_link(running_manager.home.link_address, creds)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_manager_refuses_to_start_with_a_loose_key(manager_home, trailwarden) -> None:
    key = manager_home.path / "pki" / "server.key"
    key.chmod(0o644)
    result = trailwarden("manager", "run", "--home", str(manager_home.path), timeout=30)
    assert result.returncode != 0
    assert "server.key" in result.stderr and "chmod 600" in result.stderr


def test_revoked_agent_process_stops_retrying_with_its_own_exit_code(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    """A revoked agent exits (status 3, one clear line) instead of retrying forever, so a
    supervisor with RestartPreventExitStatus=3 leaves it down until it is re-enrolled."""
    import os
    import subprocess
    import sys
    import time

    home = enrolled_agent("web-2")
    identity = AgentIdentity.load(home)
    agent = subprocess.Popen(
        [sys.executable, "-m", "trailwarden.common.cli", "agent", "run", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while not running_manager.server.sessions.is_connected(identity.agent_id):
            assert agent.poll() is None, agent.communicate()
            assert time.monotonic() < deadline, "the agent never connected"
            time.sleep(0.1)
        running_manager.server.registry.revoke(identity.agent_id, "test")
        for session in running_manager.server.sessions.all():
            if session.agent.id == identity.agent_id:
                session.close("agent revoked")
        _, stderr = agent.communicate(timeout=60)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 3, stderr[-2000:]
    assert "refuses this agent" in stderr and "re-enroll" in stderr
    assert "Traceback" not in stderr
