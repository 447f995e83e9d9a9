from __future__ import annotations

import os
from pathlib import Path

import pytest

from trailwarden.common import keyfiles, tls
from trailwarden.common.errors import InsecureKeyFileError


def test_private_files_are_0600_and_loose_ones_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "agent.key"
    keyfiles.write_private_file(key_file, tls.key_to_pem(tls.new_private_key()))
    assert (key_file.stat().st_mode & 0o777) == 0o600
    keyfiles.read_private_file(key_file)  # accepted
    os.chmod(key_file, 0o644)
    with pytest.raises(InsecureKeyFileError, match=r"chmod 600"):
        keyfiles.read_private_file(key_file)
