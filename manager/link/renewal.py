"""Agent certificates renewed over the link: at a CA rotation, and before they expire.

The manager offers (``RenewCertificate``, with the CA bundle to trust) to a connected agent
whose certificate comes from a CA other than the signing one, expires within
``RENEW_WITHIN_DAYS``, or whose trusted bundle is not the manager's. The agent answers on the
same stream with a CSR for a key it made (``CertificateRequest``); we sign it for the identity of
the certificate the stream was opened with — never anything the message says — and answer
``CertificateIssued``. The new certificate is pending until the agent connects with it
(manager/agents/certificates.py). A sweep every ``SWEEP_SECONDS`` reloads the PKI folder, makes
offers to agents already connected, and closes streams whose certificate's CA is no longer
trusted (after `ca finish`), so they cannot outlive the rotation.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import Counter

from trailwarden.common import tls
from trailwarden.common.errors import PkiError
from trailwarden.common.wire import link_pb2
from trailwarden.manager.agents.certificates import AgentCertificates, CertificateInfo
from trailwarden.manager.link.sessions import Session, Sessions
from trailwarden.manager.pki.live import LivePki
from trailwarden.manager.pki.material import ServerMaterial

log = logging.getLogger(__name__)

RENEW_WITHIN_DAYS = 30
"""An agent certificate expiring within this many days is renewed over the link."""
SWEEP_SECONDS = 5.0
"""How often connected agents are checked against the PKI folder."""
OFFER_RETRY_SECONDS = 600.0
"""An offer the agent did not answer is made again after this long."""
DAY_MS = 86_400_000
RENEWAL_OUTCOMES = ("offered", "issued", "refused")


def bundle_sha256(pem: bytes) -> str:
    return hashlib.sha256(pem).hexdigest()


def certificate_info(pem: bytes, material: ServerMaterial) -> CertificateInfo:
    cert = tls.load_cert(pem, "agent certificate")
    issuer = tls.issuer_among(cert, material.trusted_cas)
    return CertificateInfo(
        tls.fingerprint(cert), tls.not_after_ms(cert), tls.fingerprint(issuer) if issuer else ""
    )


class CertificateRenewal:
    def __init__(self, certificates: AgentCertificates, pki: LivePki) -> None:
        self.certificates = certificates
        self.pki = pki
        self._outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def outcomes(self) -> dict[str, int]:
        """Renewals offered, certificates issued, requests refused (the metrics)."""
        with self._lock:
            return {key: self._outcomes[key] for key in RENEWAL_OUTCOMES}

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._outcomes[outcome] += 1

    def connected(self, session: Session, peer_pem: bytes, trusted_bundle_sha256: str) -> None:
        """Note the certificate the agent connected with (runs off the event loop)."""
        info = certificate_info(peer_pem, self.pki.material)
        session.certificate = info
        session.trusted_bundle_sha256 = trusted_bundle_sha256
        if not self.certificates.promote(session.agent.id, info.fingerprint):
            self.certificates.record(session.agent.id, info)

    def reason_due(self, session: Session, material: ServerMaterial) -> str:
        """Why this agent should renew now, or ''."""
        info = session.certificate
        if info is None:
            return ""
        if info.ca_sha256 != tls.fingerprint(material.ca_cert):
            return "CA rotation"
        days_left = (info.not_after_ms - time.time() * 1000) / DAY_MS
        if days_left < RENEW_WITHIN_DAYS:
            return f"certificate expires in {max(0, int(days_left))} days"
        theirs = session.trusted_bundle_sha256
        if theirs and theirs != bundle_sha256(material.trust_pem):
            return "trusted CA bundle changed"
        return ""

    def offer_if_due(self, session: Session) -> None:
        material = self.pki.material
        reason = self.reason_due(session, material)
        if not reason or time.monotonic() - session.renewal_offered_at < OFFER_RETRY_SECONDS:
            return
        session.renewal_offered_at = time.monotonic()
        self._count("offered")
        log.info("stage=link agent=%s offering certificate renewal: %s", session.agent.id, reason)
        session.send(
            link_pb2.ManagerMessage(
                renew=link_pb2.RenewCertificate(ca_bundle_pem=material.trust_pem, reason=reason)
            )
        )

    def sign(self, session: Session, csr_pem: bytes) -> link_pb2.ManagerMessage:
        """The agent's answer to an offer: its CSR signed by the signing CA (off the loop)."""
        agent = session.agent
        material = self.pki.material
        reason = self.reason_due(session, material)
        if not session.renewal_offered_at or not reason:
            log.warning("stage=link agent=%s certificate request refused: not offered", agent.id)
            return self._refused("no certificate renewal was offered to this agent")
        try:
            csr = tls.load_csr(csr_pem)
        except PkiError as exc:
            log.warning("stage=link agent=%s certificate request refused: %s", agent.id, exc)
            return self._refused(str(exc))
        cert = tls.issue_client_cert(
            material.ca_key,
            material.ca_cert,
            csr.public_key(),
            tls.Role.AGENT,
            agent.id,
            f"agent {agent.name}",
        )
        info = CertificateInfo(
            tls.fingerprint(cert), tls.not_after_ms(cert), tls.fingerprint(material.ca_cert)
        )
        self.certificates.set_pending(agent.id, info, reason)
        self._count("issued")
        log.info(
            "stage=link agent=%s renewed certificate issued sha256=%s (%s)",
            agent.id,
            info.fingerprint[:16],
            reason,
        )
        return link_pb2.ManagerMessage(
            certificate=link_pb2.CertificateIssued(
                certificate_pem=tls.cert_to_pem(cert), ca_bundle_pem=material.trust_pem
            )
        )

    def sweep(self, sessions: Sessions) -> None:
        """Cut off agents whose CA is no longer trusted; offer renewals (on the event loop)."""
        material = self.pki.material
        trusted = {tls.fingerprint(ca) for ca in material.trusted_cas}
        for session in sessions.all():
            info = session.certificate
            if info is not None and info.ca_sha256 not in trusted:
                log.warning(
                    "stage=link agent=%s closed: its certificate's CA is no longer trusted",
                    session.agent.id,
                )
                session.close("the certificate's CA is no longer trusted (CA rotation finished)")
                continue
            self.offer_if_due(session)

    async def run(self, sessions: Sessions) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                # The files are read off the loop; sessions are only touched on it.
                await asyncio.to_thread(self.pki.refresh)
                self.sweep(sessions)
            except Exception:
                log.exception("stage=link certificate sweep failed")

    def _refused(self, error: str) -> link_pb2.ManagerMessage:
        self._count("refused")
        return link_pb2.ManagerMessage(certificate=link_pb2.CertificateIssued(error=error))
