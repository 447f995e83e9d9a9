"""Fixtures of the output tests: a real SQLite alert store, a real local HTTP receiver, and a
test CA with a server certificate for 127.0.0.1 (the receivers' TLS: SMTP STARTTLS, https)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.manager.outputs.receivers import HttpReceiver
from trailwarden.common import tls
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAlertStore]:
    database = Database(tmp_path / "manager.db")
    yield SqliteAlertStore(database)
    database.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """Not listening yet: call ``open()`` (a test may want the port closed first)."""
    server = HttpReceiver()
    yield server
    server.close()


@dataclass(frozen=True)
class ReceiverPki:
    ca_file: Path
    server: ssl.SSLContext


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ReceiverPki:
    folder = tmp_path_factory.mktemp("receiver-pki")
    ca_key, ca_cert = tls.create_ca("Receivers Test CA")
    key, cert = tls.issue_server_cert(ca_key, ca_cert, ["127.0.0.1", "localhost"])
    (folder / "ca.pem").write_bytes(tls.cert_to_pem(ca_cert))
    (folder / "server.pem").write_bytes(tls.cert_to_pem(cert))
    (folder / "server.key").write_bytes(tls.key_to_pem(key))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "server.pem", folder / "server.key")
    return ReceiverPki(folder / "ca.pem", server)
