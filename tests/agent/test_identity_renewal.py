"""Key, certificate and CA bundle are replaced together: a committed staging left by a crash
is finished when the identity is next loaded, an uncommitted one is dropped."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from trailwarden.agent.identity import (
    CA_FILE,
    CERT_FILE,
    COMMITTED_MARKER,
    IDENTITY_FILE,
    KEY_FILE,
    STAGED_DIR,
    AgentIdentity,
    replace_credentials,
)
from trailwarden.common import keyfiles


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "agent"
    AgentIdentity("a1", "one", b"old-key", b"old-cert", b"old-ca").save(home, "m:4751")
    return home


def test_replace_credentials_swaps_all_three(tmp_path: Path) -> None:
    home = _home(tmp_path)
    replace_credentials(home, b"new-key", b"new-cert", b"new-ca")
    identity = AgentIdentity.load(home)
    assert (identity.key_pem, identity.cert_pem, identity.ca_pem) == (
        b"new-key",
        b"new-cert",
        b"new-ca",
    )
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600
    assert not (home / STAGED_DIR).exists()
    assert json.loads((home / IDENTITY_FILE).read_text())["agent_id"] == "a1"


def _stage(home: Path, committed: bool) -> None:
    staged = home / STAGED_DIR
    staged.mkdir()
    keyfiles.write_private_file(staged / KEY_FILE, b"new-key")
    keyfiles.write_public_file(staged / CERT_FILE, b"new-cert")
    keyfiles.write_public_file(staged / CA_FILE, b"new-ca")
    if committed:
        keyfiles.write_public_file(staged / COMMITTED_MARKER, b"")


def test_a_committed_staging_left_by_a_crash_is_finished_on_load(tmp_path: Path) -> None:
    home = _home(tmp_path)
    _stage(home, committed=True)
    (home / STAGED_DIR / KEY_FILE).replace(home / KEY_FILE)  # the crash came after one move
    identity = AgentIdentity.load(home)
    assert (identity.key_pem, identity.cert_pem, identity.ca_pem) == (
        b"new-key",
        b"new-cert",
        b"new-ca",
    )
    assert not (home / STAGED_DIR).exists()


def test_an_uncommitted_staging_is_dropped(tmp_path: Path) -> None:
    home = _home(tmp_path)
    _stage(home, committed=False)
    identity = AgentIdentity.load(home)
    assert (identity.key_pem, identity.cert_pem) == (b"old-key", b"old-cert")
    assert not (home / STAGED_DIR).exists()
