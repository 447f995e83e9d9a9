"""The running manager's certificates, reloaded when the files in ``pki/`` change.

gRPC asks ``dynamic_ssl_server_credentials``' fetcher for the certificate configuration at each
new TLS handshake; the fetcher looks at the watched files' size and modification time (a few
``stat`` calls) and, when they changed, reads the folder again. So `manager cert renew`, `ca
rotate` and `ca finish` take effect at the next connection, with no restart and no signal;
established streams keep the credentials they were opened with. A folder that does not load
(caught between two writes, a key that does not match) is logged and the previous set kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import grpc

from trailwarden.common.errors import CredentialsError, PkiError
from trailwarden.manager.pki.material import WATCHED_FILES, ServerMaterial, load_material

log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int], ...]


def _signature(pki: Path) -> Signature:
    stamps: list[tuple[int, int, int]] = []
    for name in WATCHED_FILES:
        try:
            stat = (pki / name).stat()
        except FileNotFoundError:
            stamps.append((0, 0, 0))
        else:
            stamps.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


class LivePki:
    """The current ServerMaterial of ``pki``, with gRPC credentials that follow it."""

    def __init__(self, pki: Path) -> None:
        self.pki = pki
        self._lock = threading.Lock()
        self._signature = _signature(pki)
        self._material = load_material(pki)
        self.generation = 1
        """Bumped at each successful reload."""
        self._listeners: list[Callable[[ServerMaterial], None]] = []

    @property
    def material(self) -> ServerMaterial:
        self.refresh()
        return self._material

    def on_change(self, listener: Callable[[ServerMaterial], None]) -> None:
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Reload when the files changed; True when a new set is now in force."""
        with self._lock:
            signature = _signature(self.pki)
            if signature == self._signature:
                return False
            try:
                material = load_material(self.pki)
            except (OSError, PkiError, CredentialsError) as exc:
                log.warning(
                    "stage=tls %s changed but does not load (%s); keeping the old set",
                    self.pki,
                    exc,
                )
                return False
            self._signature = signature
            self._material = material
            self.generation += 1
        log.info(
            "stage=tls reloaded %s: server certificate issued by %s, trusting %d CA(s)%s",
            self.pki,
            material.ca_fingerprint[:16],
            material.trust_pem.count(b"BEGIN CERTIFICATE"),
            " (CA rotation in progress)" if material.rotation else "",
        )
        for listener in self._listeners:
            listener(material)
        return True

    def server_credentials(self, *, require_client_auth: bool) -> grpc.ServerCredentials:
        """Credentials whose certificates follow the folder (checked at each handshake)."""
        seen = [self.generation]

        def configuration(material: ServerMaterial) -> grpc.ServerCertificateConfiguration:
            # The chain includes the issuing CA so that enrolling agents can pin it.
            return grpc.ssl_server_certificate_configuration(
                [(material.server_key_pem, material.server_pem + material.server_issuer_pem)],
                root_certificates=material.trust_pem if require_client_auth else None,
            )

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            try:
                material = self.material
            except Exception:  # never let a reload error fail a handshake
                log.exception("stage=tls certificate reload failed")
                return None
            if self.generation == seen[0]:
                return None
            seen[0] = self.generation
            return configuration(material)

        # gRPC documents None from the fetcher as "no change"; its type stubs omit it.
        return grpc.dynamic_ssl_server_credentials(
            configuration(self._material),
            fetch,  # type: ignore[arg-type]
            require_client_authentication=require_client_auth,
        )
