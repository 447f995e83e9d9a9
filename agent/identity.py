"""The agent's identity on disk: key (0600, generated here, never sent), certificate, CA.

A certificate renewed over the link replaces key, certificate and CA bundle as one: the three
are first written to ``renewal.staged/`` and a ``COMMITTED`` marker written last; only then are
they moved into place. Loading the identity finishes a committed staging left by a crash (and
drops one that never committed), so the agent never starts with a key of one certificate and
the certificate of another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from trailwarden.common import keyfiles
from trailwarden.common.errors import CredentialsError

KEY_FILE = "agent.key"
CERT_FILE = "agent.pem"
CA_FILE = "ca.pem"
IDENTITY_FILE = "identity.json"
STAGED_DIR = "renewal.staged"
COMMITTED_MARKER = "COMMITTED"
LOCK_FILE = ".identity.lock"


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    name: str
    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes

    @classmethod
    def load(cls, home: Path) -> AgentIdentity:
        try:
            with _identity_lock(home):
                finish_staged_renewal(home)
                info = json.loads((home / IDENTITY_FILE).read_text())
                key_pem = keyfiles.read_private_file(home / KEY_FILE)
                cert_pem = (home / CERT_FILE).read_bytes()
                ca_pem = (home / CA_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise CredentialsError(
                f"{home}: agent not enrolled ({exc.filename} missing); run "
                f"`trailwarden agent enroll --home {home} ...` first"
            ) from exc
        except (ValueError, KeyError) as exc:
            raise CredentialsError(f"{home / IDENTITY_FILE}: unreadable: {exc}") from exc
        return cls(
            agent_id=info["agent_id"],
            name=info["name"],
            key_pem=key_pem,
            cert_pem=cert_pem,
            ca_pem=ca_pem,
        )

    def save(self, home: Path, manager_enroll: str) -> None:
        keyfiles.write_private_file(home / KEY_FILE, self.key_pem)
        keyfiles.write_public_file(home / CERT_FILE, self.cert_pem)
        keyfiles.write_public_file(home / CA_FILE, self.ca_pem)
        (home / IDENTITY_FILE).write_text(
            json.dumps(
                {"agent_id": self.agent_id, "name": self.name, "enrolled_with": manager_enroll},
                indent=2,
            )
        )


def replace_credentials(home: Path, key_pem: bytes, cert_pem: bytes, ca_pem: bytes) -> None:
    """Key (0600), certificate and CA bundle replaced together (see the module docstring)."""
    staged = home / STAGED_DIR
    with _identity_lock(home):
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(mode=0o700)
        keyfiles.write_private_file(staged / KEY_FILE, key_pem)
        keyfiles.write_public_file(staged / CERT_FILE, cert_pem)
        keyfiles.write_public_file(staged / CA_FILE, ca_pem)
        keyfiles.write_public_file(staged / COMMITTED_MARKER, b"")
        _fsync_dir(staged)
        finish_staged_renewal(home)


@contextlib.contextmanager
def _identity_lock(home: Path) -> Iterator[None]:
    """Held while the identity files are replaced or read: another process loading the
    identity (`agent status`, a restart) must neither see half a renewal nor drop a staging
    that is still being written. Without a writable home (a read-only look) no lock is taken:
    nothing can be replaced there either."""
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def finish_staged_renewal(home: Path) -> None:
    """Move a committed staging into place; drop an uncommitted one (left by a crash: the
    lock is held while one is written). Idempotent; called with the lock held."""
    staged = home / STAGED_DIR
    if not staged.is_dir():
        return
    if (staged / COMMITTED_MARKER).exists():
        for name in (KEY_FILE, CERT_FILE, CA_FILE):
            if (staged / name).exists():  # already moved by an interrupted earlier run
                os.replace(staged / name, home / name)
        _fsync_dir(home)
    shutil.rmtree(staged, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
