"""How the console is served: HTTPS only, its headers, the body cap, its certificate."""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path

import pytest

from tests.fixtures.console import Console
from tests.fixtures.system import ManagerHome
from trailwarden.common import keyfiles, tls
from trailwarden.common.errors import InsecureKeyFileError, PkiError
from trailwarden.manager.server import BackgroundManager

PASSWORD = "correct horse battery staple"


def test_every_answer_carries_the_security_headers_and_no_server_banner(
    console: Console,
) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    client = console.client()
    anonymous = client.request("GET", "/login")
    client.login("alice", PASSWORD)
    for reply in (anonymous, client.request("GET", "/"), client.request("GET", "/api/nothing")):
        csp = reply.header("content-security-policy")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert reply.header("x-content-type-options") == "nosniff"
        assert reply.header("x-frame-options") == "DENY"
        assert reply.header("strict-transport-security") == ""  # reached as localhost
        assert reply.header("referrer-policy") == "no-referrer"
        assert reply.header("server") == ""
    assert "<script>" not in anonymous.text and "style=" not in anonymous.text
    form = anonymous.text
    assert form.count('name="username"') == 1 and form.count('name="password"') == 1
    assert form.count('type="submit"') == 1


def test_hsts_is_sent_for_a_dns_name_only(console: Console) -> None:
    client = console.client()
    named = client.request("GET", "/login", headers={"Host": "console.example.org"})
    assert named.header("strict-transport-security") == "max-age=31536000"
    for host in ("localhost:4752", "127.0.0.1", "[::1]:4752", "app.localhost"):
        reply = client.request("GET", "/login", headers={"Host": host})
        assert reply.header("strict-transport-security") == "", host


def test_a_body_over_the_cap_is_refused_with_413(console: Console) -> None:
    console.add_user("alice", "viewer", PASSWORD)
    client = console.client()
    client.login("alice", PASSWORD)
    big = b"x" * (1024 * 1024 + 1)
    declared = client.request(
        "POST", "/api/agents/a/revoke", body=big, headers={"X-CSRF-Token": client.csrf()}
    )
    assert declared.status == 413
    login_flood = client.request(
        "POST",
        "/login",
        body=b"username=" + b"a" * 20_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert login_flood.status == 413


def test_plain_http_gets_no_answer(console: Console) -> None:
    with socket.create_connection(("127.0.0.1", console.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert b"HTTP/1.1 200" not in answer and b"<html" not in answer


def _org_certificate(directory: Path, key_mode: int) -> tuple[Path, Path, Path]:
    """An organisation CA and a console certificate it issued for localhost."""
    ca_key, ca_cert = tls.create_ca("Example Org CA")
    key, cert = tls.issue_server_cert(ca_key, ca_cert, ["localhost", "127.0.0.1"])
    ca_path, cert_path, key_path = (
        directory / "org-ca.pem",
        directory / "console.pem",
        directory / "console.key",
    )
    keyfiles.write_public_file(ca_path, tls.cert_to_pem(ca_cert))
    keyfiles.write_public_file(cert_path, tls.cert_to_pem(cert))
    keyfiles.write_private_file(key_path, tls.key_to_pem(key))
    key_path.chmod(key_mode)
    return ca_path, cert_path, key_path


def _use_certificate(home: ManagerHome, cert: Path, key: str) -> None:
    config = home.path / "manager.toml"
    config.write_text(
        config.read_text().replace(
            "[console]", f'[console]\ntls_cert = "{cert}"\ntls_key = "{key}"', 1
        )
    )


def test_an_organisation_certificate_is_served_instead_of_the_managers(
    manager_home: ManagerHome,
) -> None:
    org_ca, cert, key = _org_certificate(manager_home.path, 0o600)
    _use_certificate(manager_home, cert, key.name)  # a path relative to the home works
    background = BackgroundManager(manager_home.path)
    server = background.start()
    try:
        context = ssl.create_default_context(cafile=str(org_ca))
        connection = http.client.HTTPSConnection("localhost", server.console_port, context=context)
        connection.request("GET", "/login")
        assert connection.getresponse().status == 200
        connection.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            own_ca = ssl.create_default_context(cafile=str(manager_home.path / "pki/ca.pem"))
            other = http.client.HTTPSConnection("localhost", server.console_port, context=own_ca)
            other.request("GET", "/login")
    finally:
        background.stop()


def test_a_console_key_others_can_read_stops_the_start(manager_home: ManagerHome) -> None:
    _, cert, key = _org_certificate(manager_home.path, 0o644)
    _use_certificate(manager_home, cert, str(key))
    background = BackgroundManager(manager_home.path)
    with pytest.raises(InsecureKeyFileError, match=r"console\.key.*chmod 600"):
        background.start()
    background.stop()


def test_a_certificate_that_does_not_match_its_key_is_refused(manager_home: ManagerHome) -> None:
    _, cert, _ = _org_certificate(manager_home.path, 0o600)
    _use_certificate(manager_home, cert, "pki/server.key")
    background = BackgroundManager(manager_home.path)
    with pytest.raises(PkiError, match=r"console certificate .* cannot be used"):
        background.start()
    background.stop()


def test_a_disabled_console_listens_nowhere(manager_home: ManagerHome) -> None:
    config = manager_home.path / "manager.toml"
    config.write_text(config.read_text().replace("enabled = true", "enabled = false", 1))
    background = BackgroundManager(manager_home.path)
    server = background.start()
    try:
        assert server.console is None and server.console_port == 0
    finally:
        background.stop()
