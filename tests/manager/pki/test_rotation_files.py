"""The PKI folder through a rotation, without a running manager: which CA issues the server
certificate at each step, and the refusals that keep the order of steps."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.fixtures.system import make_manager_home
from trailwarden.common import tls
from trailwarden.common.errors import PkiError
from trailwarden.manager.config import load_manager_config
from trailwarden.manager.pki.actions import (
    finish_rotation,
    renew_server_certificate,
    rotate_ca,
)
from trailwarden.manager.pki.material import load_material


def _issuer(pki: Path) -> str:
    material = load_material(pki)
    issuer = tls.issuer_among(material.server_cert, material.trusted_cas)
    assert issuer is not None
    return tls.fingerprint(issuer)


def test_server_certificate_stays_on_the_retiring_ca_until_finish(tmp_path: Path) -> None:
    home = make_manager_home(tmp_path / "manager")
    config = load_manager_config(home.path)
    pki = config.pki_dir
    old = home.ca_fingerprint

    rotation = rotate_ca(config, 86_400, "test")
    assert rotation.retiring_ca_sha256 == old
    material = load_material(pki)
    assert len(material.trusted_cas) == 2
    assert tls.fingerprint(material.ca_cert) == rotation.new_ca_sha256
    assert material.ca_fingerprint == old  # what enrolling agents pin, until finish

    # Renewed during the overlap, the server certificate still comes from the retiring CA:
    # agents that have not renewed trust only that one.
    renew_server_certificate(config, ["manager.example.org"], 30, "test")
    assert _issuer(pki) == old
    with pytest.raises(PkiError, match="already in progress"):
        rotate_ca(config, 86_400, "test")

    ended = finish_rotation(config, force=False, actor="test")  # no agents enrolled
    assert ended.finished and ended.not_renewed == []
    assert _issuer(pki) == rotation.new_ca_sha256
    after = load_material(pki)
    assert len(after.trusted_cas) == 1 and after.rotation is None
    assert tls.server_names(after.server_cert) == ["manager.example.org"]
    assert not (pki / "ca-retiring.key").exists()
    assert stat.S_IMODE((pki / "ca.key").stat().st_mode) == 0o600
    bundle = tls.AdminBundle.load(home.credentials)
    assert [tls.fingerprint(c) for c in tls.load_certs(bundle.ca_pem)] == [ended.new_ca_sha256]
    with pytest.raises(PkiError, match="no CA rotation in progress"):
        finish_rotation(config, force=False, actor="test")


def test_a_key_that_does_not_match_its_certificate_is_refused(tmp_path: Path) -> None:
    home = make_manager_home(tmp_path / "manager")
    pki = home.path / "pki"
    (pki / "server.key").write_bytes(tls.key_to_pem(tls.new_private_key()))
    with pytest.raises(PkiError, match=r"server\.key does not belong to"):
        load_material(pki)
