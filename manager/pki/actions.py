"""What an operator does to the manager's PKI, on its home folder: renew the server
certificate, start a CA rotation, finish it. Each is audited in the manager's database.

These run beside a live manager (`trailwarden manager cert renew --home …`): every file is
replaced whole (common/keyfiles.py) and the running manager reloads the folder when it sees a
change (manager/pki/live.py), refusing a half-written set, so no restart is needed.

A CA rotation, in order:

1. ``ca rotate``: the current CA becomes the *retiring* CA (``ca-retiring.*``), a new CA is
   made (``ca.*``). The manager now trusts client certificates of both, signs new ones (agents,
   admins, enrollment) with the new CA, and keeps presenting its server certificate from the
   retiring CA, the only one agents that have not renewed yet trust.
2. Connected agents are offered a renewal over their link with the bundle of both CAs; each
   makes a new key, has it certified by the new CA, stores key + certificate + bundle and
   reconnects. Agents that connect later get the same offer.
3. ``ca finish``: refused while agents still hold a retiring-CA certificate (listed), unless
   ``--force``. A new server certificate from the new CA is written, the retiring CA is
   dropped: its certificates are refused from the next connection on, and the streams still
   open with one are closed. Renewed agents trust both CAs, so they accept the new server
   certificate; they are then offered the bundle of the new CA only.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509

from trailwarden.common import keyfiles, tls
from trailwarden.common.errors import PkiError
from trailwarden.manager.agents.certificates import AgentCertificates
from trailwarden.manager.agents.registry import AgentRecord, Registry, now_ms
from trailwarden.manager.config import CREDENTIALS_FILE, ManagerConfig
from trailwarden.manager.home import ADMIN_NAME, write_admin_bundle
from trailwarden.manager.pki.material import (
    CA_CERT,
    CA_KEY,
    RETIRING_CERT,
    RETIRING_KEY,
    ROTATION_FILE,
    SERVER_CERT,
    SERVER_KEY,
    Rotation,
    ServerMaterial,
    load_material,
)
from trailwarden.manager.store.sqlite.database import Database


def local_actor() -> str:
    """Who ran a local command, for the audit log."""
    return f"local:{getpass.getuser()}"


@dataclass(frozen=True)
class ServerRenewal:
    names: list[str]
    not_after: dt.datetime
    fingerprint: str
    issuer_sha256: str
    console_renewed: bool
    """The console serves the manager's server certificate, so it was renewed too."""


def renew_server_certificate(
    config: ManagerConfig, names: list[str], days: int, actor: str
) -> ServerRenewal:
    """A new server certificate (and key) for ``names`` (default: the current ones)."""
    material = load_material(config.pki_dir)
    wanted = list(dict.fromkeys(names)) or tls.server_names(material.server_cert)
    if not wanted:
        raise PkiError(f"{config.pki_dir / SERVER_CERT} names no host; pass --server-name")
    cert = _write_server_certificate(config.pki_dir, material, wanted, days)
    issuer = tls.fingerprint(material.server_signer()[1])
    _audit(
        config,
        actor,
        "manager.cert.renew",
        "server",
        f"names={','.join(wanted)} days={days} sha256={tls.fingerprint(cert)} ca={issuer}",
    )
    return ServerRenewal(
        wanted, cert.not_valid_after_utc, tls.fingerprint(cert), issuer, not config.console.tls_cert
    )


def rotate_ca(config: ManagerConfig, overlap_seconds: float, actor: str) -> Rotation:
    """Start a CA rotation (see the module docstring for the order of things)."""
    pki = config.pki_dir
    material = load_material(pki)
    if material.rotation is not None:
        raise PkiError(
            f"a CA rotation is already in progress (new CA {material.rotation.new_ca_sha256[:16]}"
            f"…); end it first: trailwarden manager ca finish --home {config.home}"
        )
    new_key, new_cert = tls.create_ca(
        f"TrailWarden CA ({socket.gethostname()}) {dt.datetime.now(dt.UTC):%Y-%m-%d %H%M%S}"
    )
    started = now_ms()
    rotation = Rotation(
        started_ms=started,
        overlap_ends_ms=started + int(overlap_seconds * 1000),
        retiring_ca_sha256=tls.fingerprint(material.ca_cert),
        new_ca_sha256=tls.fingerprint(new_cert),
    )
    # The retiring CA is copied aside before anything else changes: at every step the folder
    # still holds a CA for the server certificate and every agent certificate out there.
    keyfiles.write_private_file(pki / RETIRING_KEY, (pki / CA_KEY).read_bytes())
    keyfiles.write_public_file(pki / RETIRING_CERT, material.ca_pem)
    keyfiles.write_public_file(pki / ROTATION_FILE, rotation.to_json().encode())
    keyfiles.write_private_file(pki / CA_KEY, tls.key_to_pem(new_key))
    keyfiles.write_public_file(pki / CA_CERT, tls.cert_to_pem(new_cert))
    _rewrite_admin_bundle(config, load_material(pki))
    _audit(
        config,
        actor,
        "manager.ca.rotate",
        rotation.new_ca_sha256,
        f"retiring={rotation.retiring_ca_sha256} overlap_ends_ms={rotation.overlap_ends_ms}",
    )
    return rotation


@dataclass(frozen=True)
class RotationEnd:
    finished: bool
    not_renewed: list[AgentRecord]
    """Active agents whose certificate does not come from the new CA (or is not known)."""
    new_ca_sha256: str


def finish_rotation(config: ManagerConfig, force: bool, actor: str) -> RotationEnd:
    """End the overlap: refused while agents are not renewed, unless ``force``."""
    pki = config.pki_dir
    material = load_material(pki)
    if material.rotation is None:
        raise PkiError(f"no CA rotation in progress in {pki} (start one: manager ca rotate)")
    signing = tls.fingerprint(material.ca_cert)
    laggards = agents_not_on(config, signing)
    if laggards and not force:
        return RotationEnd(False, laggards, signing)
    names = tls.server_names(material.server_cert)
    without_retiring = replace(material, retiring_key=None, retiring_cert=None, rotation=None)
    _write_server_certificate(pki, without_retiring, names, tls.LEAF_VALIDITY_DAYS)
    (pki / ROTATION_FILE).unlink()  # from here the retiring CA is no longer trusted
    (pki / RETIRING_CERT).unlink(missing_ok=True)
    (pki / RETIRING_KEY).unlink(missing_ok=True)
    _rewrite_admin_bundle(config, load_material(pki))
    _audit(
        config,
        actor,
        "manager.ca.finish",
        signing,
        f"retired={material.rotation.retiring_ca_sha256} forced={force} "
        f"not_renewed={','.join(agent.id for agent in laggards) or '-'}",
    )
    return RotationEnd(True, laggards, signing)


def agents_not_on(config: ManagerConfig, ca_sha256: str) -> list[AgentRecord]:
    database = Database(config.database_path)
    try:
        known = AgentCertificates(database).all()
        agents = Registry(database).list_agents()
    finally:
        database.close()
    return [
        agent
        for agent in agents
        if not agent.revoked and (agent.id not in known or known[agent.id].ca_sha256 != ca_sha256)
    ]


def _write_server_certificate(
    pki: Path, material: ServerMaterial, names: list[str], days: int
) -> x509.Certificate:
    key, cert = tls.issue_server_cert(*material.server_signer(), names, days)
    # Key first, then certificate: a manager reloading in between sees a pair that does not
    # match, refuses it and keeps serving the old one until the certificate lands.
    keyfiles.write_private_file(pki / SERVER_KEY, tls.key_to_pem(key))
    keyfiles.write_public_file(pki / SERVER_CERT, tls.cert_to_pem(cert))
    return cert


def _rewrite_admin_bundle(config: ManagerConfig, material: ServerMaterial) -> None:
    """The home's admin credentials: a certificate of the signing CA, trusting what the
    manager trusts (its server certificate's issuer among them)."""
    path = config.home / CREDENTIALS_FILE
    bundle = tls.AdminBundle.load(path)
    write_admin_bundle(
        path,
        material.ca_key,
        material.ca_cert,
        bundle.address,
        ADMIN_NAME,
        trust_pem=material.trust_pem,
        server_name=bundle.server_name,
    )


def _audit(config: ManagerConfig, actor: str, action: str, target: str, detail: str) -> None:
    database = Database(config.database_path)
    try:
        Registry(database).audit(actor, action, target, detail)
    finally:
        database.close()
