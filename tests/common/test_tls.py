from __future__ import annotations

import pytest

from trailwarden.common import tls
from trailwarden.common.errors import CaPinError


def test_identity_lives_in_the_uri_san() -> None:
    ca_key, ca_cert = tls.create_ca()
    key = tls.new_private_key()
    cert = tls.issue_client_cert(
        ca_key, ca_cert, key.public_key(), tls.Role.AGENT, "a1b2c3", "agent web-1"
    )
    assert tls.cert_identity(cert) == (tls.Role.AGENT, "a1b2c3")
    _, server = tls.issue_server_cert(ca_key, ca_cert, ["manager.example", "127.0.0.1"])
    assert tls.cert_identity(server) is None


def test_fingerprint_formats() -> None:
    _, ca = tls.create_ca()
    fp = tls.fingerprint(ca)
    colon = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    assert tls.normalise_fingerprint(colon) == fp
    assert tls.normalise_fingerprint("sha256:" + fp) == fp
    with pytest.raises(CaPinError, match="64 hex digits"):
        tls.normalise_fingerprint("abc")


def test_csr_signature_is_checked() -> None:
    key = tls.new_private_key()
    csr = tls.load_csr(tls.build_csr(key, "web-1"))
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
