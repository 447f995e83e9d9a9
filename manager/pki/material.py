"""What the manager's ``pki/`` folder holds, read as one consistent set.

<home>/pki/ca.pem, ca.key                  the CA that signs new certificates (ca.key 0600)
<home>/pki/ca-retiring.pem, ca-retiring.key the previous CA, during a CA rotation's overlap only
<home>/pki/rotation.json                   the rotation in progress (started, overlap end)
<home>/pki/server.pem, server.key          the manager's server certificate (server.key 0600)

The CA private keys live beside the manager's database in its home (0700, keys 0600) because the
manager signs agent certificates itself, at enrollment and at renewal over the link; nothing
else ever reads them. During a rotation the server certificate stays issued by the retiring CA
until ``ca finish``: agents that have not renewed yet trust only that one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from trailwarden.common import keyfiles, tls
from trailwarden.common.errors import PkiError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
RETIRING_CERT = "ca-retiring.pem"
RETIRING_KEY = "ca-retiring.key"
ROTATION_FILE = "rotation.json"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"
WATCHED_FILES = (CA_CERT, CA_KEY, RETIRING_CERT, ROTATION_FILE, SERVER_CERT, SERVER_KEY)
"""The files whose change makes a running manager reload its certificates."""


@dataclass(frozen=True)
class Rotation:
    """A CA rotation in progress: agents are moved from the retiring CA to the new one."""

    started_ms: int
    overlap_ends_ms: int
    retiring_ca_sha256: str
    new_ca_sha256: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": "trailwarden-ca-rotation/1",
                "started_ms": self.started_ms,
                "overlap_ends_ms": self.overlap_ends_ms,
                "retiring_ca_sha256": self.retiring_ca_sha256,
                "new_ca_sha256": self.new_ca_sha256,
            },
            indent=2,
        )

    @classmethod
    def load(cls, path: Path) -> Rotation | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(
                started_ms=int(data["started_ms"]),
                overlap_ends_ms=int(data["overlap_ends_ms"]),
                retiring_ca_sha256=str(data["retiring_ca_sha256"]),
                new_ca_sha256=str(data["new_ca_sha256"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PkiError(f"{path}: not a CA rotation record: {exc}") from exc


@dataclass(frozen=True)
class ServerMaterial:
    """The PKI a running manager needs; key files are permission-checked when read."""

    ca_pem: bytes
    """The signing CA's certificate."""
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    server_pem: bytes
    server_key_pem: bytes
    trust_pem: bytes
    """The CAs whose client certificates are accepted; also the bundle agents are given."""
    server_issuer_pem: bytes
    """The CA that issued server.pem: sent in the chain, it is what enrolling agents pin."""
    retiring_key: ec.EllipticCurvePrivateKey | None = None
    retiring_cert: x509.Certificate | None = None
    rotation: Rotation | None = None

    @property
    def ca_fingerprint(self) -> str:
        """The fingerprint an enrolling agent pins (``--ca-sha256``): the server's issuer."""
        return tls.fingerprint(self.server_issuer_pem)

    @property
    def trusted_cas(self) -> list[x509.Certificate]:
        return tls.load_certs(self.trust_pem, "trust bundle")

    @property
    def server_cert(self) -> x509.Certificate:
        return tls.load_cert(self.server_pem, SERVER_CERT)

    def server_signer(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """The CA a new server certificate comes from: the retiring one during a rotation
        (agents not renewed yet trust only it), else the signing CA."""
        if self.retiring_key is not None and self.retiring_cert is not None:
            return self.retiring_key, self.retiring_cert
        return self.ca_key, self.ca_cert


def load_material(pki: Path) -> ServerMaterial:
    """Read ``pki`` as one set, refusing a key that does not belong to its certificate (a
    folder caught half-way through a renewal is refused, and a live reload keeps the old set)."""
    ca_pem = (pki / CA_CERT).read_bytes()
    ca_cert = tls.load_cert(ca_pem, str(pki / CA_CERT))
    ca_key = _key(pki / CA_KEY, ca_cert)
    server_pem = (pki / SERVER_CERT).read_bytes()
    server_key_pem = keyfiles.read_private_file(pki / SERVER_KEY)
    server_cert = tls.load_cert(server_pem, str(pki / SERVER_CERT))
    server_key = tls.load_private_key(server_key_pem, str(pki / SERVER_KEY))
    if not tls.public_keys_match(server_key, server_cert):
        raise PkiError(f"{pki / SERVER_KEY} does not belong to {pki / SERVER_CERT}")
    rotation = Rotation.load(pki / ROTATION_FILE)
    retiring_key = retiring_cert = None
    trust = [ca_cert]
    if rotation is not None:
        retiring_cert = tls.load_cert((pki / RETIRING_CERT).read_bytes(), str(pki / RETIRING_CERT))
        retiring_key = _key(pki / RETIRING_KEY, retiring_cert)
        if tls.fingerprint(retiring_cert) != tls.fingerprint(ca_cert):
            trust.append(retiring_cert)
    issuer = tls.issuer_among(server_cert, trust)
    if issuer is None:
        raise PkiError(f"{pki / SERVER_CERT} is not issued by a CA of {pki}")
    return ServerMaterial(
        ca_pem=ca_pem,
        ca_key=ca_key,
        ca_cert=ca_cert,
        server_pem=server_pem,
        server_key_pem=server_key_pem,
        trust_pem=b"".join(tls.cert_to_pem(cert) for cert in trust),
        server_issuer_pem=tls.cert_to_pem(issuer),
        retiring_key=retiring_key,
        retiring_cert=retiring_cert,
        rotation=rotation,
    )


def _key(path: Path, cert: x509.Certificate) -> ec.EllipticCurvePrivateKey:
    key = tls.load_private_key(keyfiles.read_private_file(path), str(path))
    if not tls.public_keys_match(key, cert):
        raise PkiError(f"{path} does not belong to {path.with_suffix('.pem')}")
    return key
