"""Certificates in `admin agents`: each agent's expiry and CA, and a CA rotation in progress."""

from __future__ import annotations

from trailwarden.common import tls
from trailwarden.common.wire import admin_pb2
from trailwarden.manager.agents.certificates import AgentCertificates
from trailwarden.manager.pki.live import LivePki


class CertificateView:
    def __init__(self, certificates: AgentCertificates, pki: LivePki) -> None:
        self.certificates = certificates
        self.pki = pki

    def annotate(self, response: admin_pb2.ListAgentsResponse) -> None:
        """Fill the certificate fields of ``response``'s agents (runs off the event loop)."""
        known = self.certificates.all()
        material = self.pki.material
        signing = tls.fingerprint(material.ca_cert)
        for info in response.agents:
            cert = known.get(info.agent_id)
            # As `ca finish` counts them: an agent whose certificate is not known (enrolled
            # before this was recorded, not connected since) is not known to have renewed.
            info.cert_on_retiring_ca = material.rotation is not None and (
                cert is None or cert.ca_sha256 != signing
            )
            if cert is not None:
                info.cert_not_after_unix_ms = cert.not_after_ms
                info.cert_ca_sha256 = cert.ca_sha256
        rotation = material.rotation
        if rotation is not None:
            response.ca_rotation.CopyFrom(
                admin_pb2.CaRotationState(
                    started_unix_ms=rotation.started_ms,
                    overlap_ends_unix_ms=rotation.overlap_ends_ms,
                    retiring_ca_sha256=rotation.retiring_ca_sha256,
                    new_ca_sha256=rotation.new_ca_sha256,
                )
            )
