"""Server certificate renewal and agent certificate expiry, with a real manager (in-process,
real gRPC over loopback with its real certificates) and the real CLI as a subprocess.

- `manager cert renew --server-name NAME` while the manager runs: a client that verifies the
  manager by NAME is refused before and served after, with no restart; the key is 0600; the
  console serves the renewed certificate too; the renewal is audited.
- An agent whose certificate expires within 30 days is warned about in `admin agents`, and is
  renewed over its link when it connects with a renewer (no re-enrollment); the warning goes.
"""

from __future__ import annotations

import json
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from tests.fixtures.system import RunningManager, run_cli, start_link, wait_until
from trailwarden.agent.identity import AgentIdentity, replace_credentials
from trailwarden.agent.renewal import CertificateRenewer
from trailwarden.agent.spool import Spool
from trailwarden.common import channels, tls
from trailwarden.common.wire import admin_pb2, admin_pb2_grpc
from trailwarden.manager.agents.certificates import AgentCertificates, CertificateInfo
from trailwarden.manager.pki.limits import SERVER_CERT_MAX_DAYS

NEW_NAME = "manager.example.org"


def _list_agents(running_manager: RunningManager, server_name: str) -> admin_pb2.ListAgentsResponse:
    bundle = tls.AdminBundle.load(running_manager.home.credentials)
    with grpc.secure_channel(
        running_manager.home.link_address,
        channels.client_channel_credentials(bundle.ca_pem, bundle.cert_pem, bundle.key_pem),
        options=channels.channel_options(server_name),
    ) as channel:
        response: admin_pb2.ListAgentsResponse = admin_pb2_grpc.AdminStub(channel).ListAgents(
            admin_pb2.ListAgentsRequest(), timeout=10
        )
        return response


def test_the_day_limit_is_the_leaf_validity() -> None:
    assert SERVER_CERT_MAX_DAYS == tls.LEAF_VALIDITY_DAYS


def test_cert_renew_with_a_new_name_serves_it_without_a_restart(
    running_manager: RunningManager,
) -> None:
    home = running_manager.home.path
    with pytest.raises(grpc.RpcError) as refused:
        _list_agents(running_manager, NEW_NAME)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    result = run_cli(
        "manager", "cert", "renew", "--home", str(home),
        "--server-name", NEW_NAME, "--server-name", "localhost", "--days", "90",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert NEW_NAME in result.stdout and "renewed too" in result.stdout

    key = home / "pki" / "server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = tls.load_cert((home / "pki" / "server.pem").read_bytes())
    assert tls.server_names(cert) == [NEW_NAME, "localhost"]
    assert 89 <= (cert.not_valid_after_utc.timestamp() - time.time()) / 86400 <= 90

    # The running manager serves the new certificate from the next connection on.
    assert _list_agents(running_manager, NEW_NAME) is not None
    assert _list_agents(running_manager, "localhost") is not None
    with pytest.raises(grpc.RpcError):
        _list_agents(running_manager, "127.0.0.1")  # no longer a name of the certificate

    # The console serves the manager's certificate: renewed with it.
    port = running_manager.server.console_port
    wait_until(
        lambda: (
            tls.fingerprint(ssl.get_server_certificate(("127.0.0.1", port)).encode())
            == tls.fingerprint(cert)
        ),
        "the console to serve the renewed certificate",
    )

    entries = [e for e in running_manager.server.registry.audit_entries() if e.action]
    renewals = [e for e in entries if e.action == "manager.cert.renew"]
    assert renewals and NEW_NAME in renewals[0].detail and renewals[0].actor.startswith("local:")


def test_cert_renew_refuses_days_out_of_range(running_manager: RunningManager) -> None:
    home = str(running_manager.home.path)
    for days in ("0", str(SERVER_CERT_MAX_DAYS + 1)):
        result = run_cli("manager", "cert", "renew", "--home", home, "--days", days)
        assert result.returncode == 2 and "--days" in result.stderr


def _short_lived_certificate(running_manager: RunningManager, home: Path, days: int) -> None:
    """Give the enrolled agent in ``home`` a certificate from the manager's CA that expires in
    ``days``, as a renewal would have (pending until the agent connects with it)."""
    identity = AgentIdentity.load(home)
    material = running_manager.server.material
    key = tls.new_private_key()
    cert = tls.issue_client_cert(
        material.ca_key, material.ca_cert, key.public_key(), tls.Role.AGENT,
        identity.agent_id, "agent near-expiry", days=days,
    )  # fmt: skip
    AgentCertificates(running_manager.server.database).set_pending(
        identity.agent_id,
        CertificateInfo(tls.fingerprint(cert), tls.not_after_ms(cert), material.ca_fingerprint),
        "test: short-lived",
    )
    replace_credentials(home, tls.key_to_pem(key), tls.cert_to_pem(cert), identity.ca_pem)


def _spool(home: Path) -> Spool:
    return Spool(home / "spool.db", 10 * 1024**2)


def test_expiring_agent_certificate_is_warned_about_then_renewed_over_the_link(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    home = enrolled_agent("near-expiry")
    agent_id = AgentIdentity.load(home).agent_id
    _short_lived_certificate(running_manager, home, days=10)
    short = tls.fingerprint(AgentIdentity.load(home).cert_pem)

    # Connected without a renewer, the agent keeps its short-lived certificate: warned about.
    link = start_link(home, running_manager.home.link_address, _spool(home))
    try:
        assert link.client.connected.wait(15)
        wait_until(
            lambda: running_manager.server.registry.get(agent_id).cert_fingerprint == short,
            "the short-lived certificate to be the agent's",
        )
    finally:
        link.close()
    env = {"TRAILWARDEN_CREDENTIALS": str(running_manager.home.credentials)}
    listed = run_cli("admin", "agents", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "WARNING near-expiry: certificate expires in 9 days" in listed.stdout

    # With a renewer (as `agent run` has), the manager's offer is taken: a new key and
    # certificate over the same link, then a reconnect with them; no re-enrollment.
    link = start_link(
        home, running_manager.home.link_address, _spool(home), renewer=CertificateRenewer(home)
    )
    try:
        wait_until(lambda: link.client.renewals == 1, "the renewal over the link")
        wait_until(
            lambda: (
                running_manager.server.registry.get(agent_id).cert_fingerprint
                == tls.fingerprint(AgentIdentity.load(home).cert_pem)
            ),
            "the agent to connect with its renewed certificate",
        )
        assert link.client.connected.wait(15)
    finally:
        link.close()
    renewed = AgentIdentity.load(home)
    assert renewed.agent_id == agent_id
    assert tls.fingerprint(renewed.cert_pem) != short
    assert stat.S_IMODE((home / "agent.key").stat().st_mode) == 0o600
    assert not (home / "renewal.staged").exists()
    days_left = (tls.not_after_ms(tls.load_cert(renewed.cert_pem)) / 1000 - time.time()) / 86400
    assert days_left > 800
    relisted = run_cli("admin", "agents", env=env)
    assert "WARNING near-expiry" not in relisted.stdout, relisted.stdout
    actions = [e.action for e in running_manager.server.registry.audit_entries()]
    assert "agent.cert.issue" in actions and "agent.cert.renew" in actions
    outcomes = running_manager.server.renewal.outcomes()
    assert outcomes["issued"] == 1 and outcomes["refused"] == 0 and outcomes["offered"] >= 2


def test_a_certificate_request_nobody_offered_is_refused(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    """An agent cannot mint certificates at will: a CSR on the link without an offer (its
    certificate is fresh, its CA current) gets an error and nothing is issued."""
    import queue

    from trailwarden.common.wire import link_pb2, link_pb2_grpc

    home = enrolled_agent("eager")
    identity = AgentIdentity.load(home)
    outbox: queue.Queue[link_pb2.AgentMessage | None] = queue.Queue()
    outbox.put(link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="t", hostname="h")))
    csr = tls.build_csr(tls.new_private_key(), "agent eager")
    outbox.put(link_pb2.AgentMessage(cert_request=link_pb2.CertificateRequest(csr_pem=csr)))

    def messages() -> Iterator[link_pb2.AgentMessage]:
        while (item := outbox.get()) is not None:
            yield item

    credentials = channels.client_channel_credentials(
        identity.ca_pem, identity.cert_pem, identity.key_pem
    )
    with grpc.secure_channel(
        running_manager.home.link_address, credentials, options=channels.channel_options()
    ) as channel:
        stream = link_pb2_grpc.AgentLinkStub(channel).Connect(messages(), timeout=15)
        answer = None
        for message in stream:
            if message.WhichOneof("body") == "certificate":
                answer = message.certificate
                break
        outbox.put(None)
        stream.cancel()
    assert answer is not None
    assert answer.error == "no certificate renewal was offered to this agent"
    assert not answer.certificate_pem
    actions = [e.action for e in running_manager.server.registry.audit_entries()]
    assert "agent.cert.issue" not in actions
    assert running_manager.server.renewal.outcomes() == {"offered": 0, "issued": 0, "refused": 1}


def test_manager_status_shows_the_server_certificate_expiry(
    running_manager: RunningManager,
) -> None:
    home = str(running_manager.home.path)
    fresh = json.loads(run_cli("manager", "status", "--home", home, "--json").stdout)
    assert fresh["server_certificate"]["days_left"] >= SERVER_CERT_MAX_DAYS - 1
    assert run_cli("manager", "cert", "renew", "--home", home, "--days", "20").returncode == 0

    text = run_cli("manager", "status", "--home", home)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "server certificate: expires" in text.stdout
    assert "(in 19 days) — renew it: trailwarden manager cert renew" in text.stdout
    report = json.loads(run_cli("manager", "status", "--home", home, "--json").stdout)
    assert report["server_certificate"]["days_left"] == 19
    assert report["server_certificate"]["names"] == ["localhost", "127.0.0.1"]
