"""The manager home folder: created by `manager init`, read by `manager run`.

<home>/manager.toml        configuration
<home>/manager.db          SQLite (registry, config, audit; alerts, users unless [store] url)
<home>/pki/                the CA, the server certificate, a CA rotation (manager/pki/material.py)
<home>/admin.credentials   admin bundle: address, CA, admin cert and key (0600)
<home>/alerts/             alerts.json (Wazuh shape)
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from trailwarden.common import keyfiles, tls
from trailwarden.common.errors import ConfigError
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.config import (
    CONFIG_FILE,
    CREDENTIALS_FILE,
    DEFAULT_CONSOLE_PORT,
    DEFAULT_ENROLL_PORT,
    DEFAULT_LINK_PORT,
    ListenConfig,
    ManagerConfig,
    render_manager_toml,
)
from trailwarden.manager.pki.material import ServerMaterial, load_material
from trailwarden.manager.store.sqlite.database import Database

__all__ = [
    "InitResult",
    "ServerMaterial",
    "init_home",
    "load_server_material",
    "write_admin_bundle",
]

ADMIN_NAME = "admin"


@dataclass(frozen=True)
class InitResult:
    home: Path
    ca_fingerprint: str
    credentials: Path
    link_address: str
    enroll_address: str
    console_url: str = ""


def init_home(
    home: Path,
    server_names: list[str] | None = None,
    *,
    listen_host: str = "0.0.0.0",
    link_port: int = DEFAULT_LINK_PORT,
    enroll_port: int = DEFAULT_ENROLL_PORT,
    advertise_host: str = "",
    console_port: int = DEFAULT_CONSOLE_PORT,
    store_url: str = "",
) -> InitResult:
    """``store_url``: a PostgreSQL URL for the alert store (`--store`), checked and migrated
    before anything is written; '' keeps the embedded SQLite store."""
    home = home.expanduser().resolve()
    if (home / CONFIG_FILE).exists():
        raise ConfigError(f"{home / CONFIG_FILE}: already initialised; refusing to overwrite")
    if store_url:
        prepare_store(store_url, "manager init --store")
    hostname = socket.gethostname()
    names = list(dict.fromkeys([*(server_names or [hostname]), "localhost", "127.0.0.1"]))
    advertise = advertise_host or names[0]
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    pki = home / "pki"
    ca_key, ca_cert = tls.create_ca(f"TrailWarden CA ({hostname})")
    server_key, server_cert = tls.issue_server_cert(ca_key, ca_cert, names)
    keyfiles.write_private_file(pki / "ca.key", tls.key_to_pem(ca_key))
    keyfiles.write_public_file(pki / "ca.pem", tls.cert_to_pem(ca_cert))
    keyfiles.write_private_file(pki / "server.key", tls.key_to_pem(server_key))
    keyfiles.write_public_file(pki / "server.pem", tls.cert_to_pem(server_cert))
    link = ListenConfig(f"{listen_host}:{link_port}", f"{advertise}:{link_port}")
    enrollment = ListenConfig(f"{listen_host}:{enroll_port}", f"{advertise}:{enroll_port}")
    (home / CONFIG_FILE).write_text(
        render_manager_toml(
            hostname, link, enrollment, f"{listen_host}:{console_port}", store_url=store_url
        )
    )
    if store_url:
        (home / CONFIG_FILE).chmod(0o600)  # the URL may carry the database password
    (home / "alerts").mkdir(exist_ok=True)
    database = Database(home / "manager.db")
    Registry(database)
    database.close()
    credentials = home / CREDENTIALS_FILE
    write_admin_bundle(credentials, ca_key, ca_cert, link.advertise, ADMIN_NAME)
    return InitResult(
        home,
        tls.fingerprint(ca_cert),
        credentials,
        link.advertise,
        enrollment.advertise,
        f"https://{advertise}:{console_port}/",
    )


def prepare_store(url: str, origin: str) -> None:
    """Check a PostgreSQL store URL, connect and apply the migrations (ConfigError or
    StoreError, the password masked, before `manager init` writes anything)."""
    from trailwarden.manager.store.postgres.alerts import PostgresAlertStore
    from trailwarden.manager.store.postgres.url import check_store_url
    from trailwarden.manager.users.postgres import migrate_user_tables

    # text_index=None: a database some manager already uses keeps its text index as it is.
    store = PostgresAlertStore.from_url(check_store_url(url, origin), pool_max=1, text_index=None)
    try:
        migrate_user_tables(store.database)
    finally:
        store.close()


def write_admin_bundle(
    path: Path,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    address: str,
    admin_name: str,
    *,
    trust_pem: bytes | None = None,
    server_name: str = "",
) -> None:
    """A new admin certificate from ``ca``; the bundle trusts ``trust_pem`` (default: the CA)."""
    key = tls.new_private_key()
    cert = tls.issue_client_cert(
        ca_key, ca_cert, key.public_key(), tls.Role.ADMIN, admin_name, f"admin {admin_name}"
    )
    tls.AdminBundle(
        address=address,
        server_name=server_name,
        ca_pem=trust_pem or tls.cert_to_pem(ca_cert),
        cert_pem=tls.cert_to_pem(cert),
        key_pem=tls.key_to_pem(key),
    ).save(path)


def load_server_material(config: ManagerConfig) -> ServerMaterial:
    return load_material(config.pki_dir)
