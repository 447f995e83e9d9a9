"""Secret files on disk: written 0600 from their first byte, refused when others can read them.

Private keys and credentials bundles go through here, on the agent and the manager alike. This
module needs no cryptography: a running agent reads its key file with it and nothing more.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from trailwarden.common.errors import CredentialsError, InsecureKeyFileError


def write_private_file(path: Path, data: bytes) -> None:
    """Write a secret file that is 0600 from its first byte (no window where others can read)."""
    _write_replacing(path, data, 0o600)


def write_public_file(path: Path, data: bytes) -> None:
    """Write a certificate or other public file; replaced whole, so a reader (a running
    manager reloading its certificates) sees the old file or the new one, never half of it."""
    _write_replacing(path, data, 0o644)


def _write_replacing(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_private_file(path: Path) -> None:
    """Refuse a key (or credentials) file that group or others can access."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise CredentialsError(f"{path}: missing") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureKeyFileError(
            f"{path}: permissions {stat.filemode(mode)} let others read a private key; "
            f"run: chmod 600 {path}"
        )


def read_private_file(path: Path) -> bytes:
    check_private_file(path)
    return path.read_bytes()
