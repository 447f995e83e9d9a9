"""Who is on the other end of a gRPC call — from the TLS peer certificate, and nothing else."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from trailwarden.common import tls
from trailwarden.common.errors import PkiError
from trailwarden.common.tls import Role as PeerKind


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    kind: PeerKind
    id: str
    fingerprint: str
    address: str


def peer_identity(context: Any) -> PeerIdentity | None:
    """The verified client certificate's identity, or None (no certificate / not ours).

    gRPC has already verified the chain against our CA (require_client_auth); here we only
    read the URI SAN of the certificate it verified.
    """
    auth = context.auth_context()
    pems = auth.get("x509_pem_cert") or []
    if not pems:
        return None
    parsed = _identity_from_pem(bytes(pems[0]))
    if parsed is None:
        return None
    kind, ident, fp = parsed
    return PeerIdentity(kind=kind, id=ident, fingerprint=fp, address=_address(context.peer()))


def peer_certificate_pem(context: Any) -> bytes:
    """The verified client certificate (PEM) of the call, or b''."""
    pems = context.auth_context().get("x509_pem_cert") or []
    return bytes(pems[0]) if pems else b""


@functools.lru_cache(maxsize=4096)
def _identity_from_pem(pem: bytes) -> tuple[PeerKind, str, str] | None:
    try:
        cert = tls.load_cert(pem, "peer certificate")
    except PkiError:
        return None
    found = tls.cert_identity(cert)
    if found is None:
        return None
    return found[0], found[1], tls.fingerprint(cert)


def _address(peer: str) -> str:
    """``ipv4:127.0.0.1:5555`` → ``127.0.0.1:5555``."""
    for prefix in ("ipv4:", "ipv6:"):
        if peer.startswith(prefix):
            return peer[len(prefix) :]
    return peer


__all__ = ["PeerIdentity", "PeerKind", "peer_certificate_pem", "peer_identity"]
