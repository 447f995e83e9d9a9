"""The agent's side of a certificate renewal over the link (manager/link/renewal.py).

Offered a renewal, the agent makes a new key here — it never leaves the host — and answers
with a CSR. The certificate that comes back is checked (it certifies that key, carries this
agent's identity and chains to a CA of the bundle that came with it) before key, certificate
and bundle replace the old ones together (agent/identity.py); the link then reconnects with
them. cryptography is loaded only when a renewal happens, not at every agent start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trailwarden.agent.identity import AgentIdentity, replace_credentials
from trailwarden.common.errors import CredentialsError, PkiError
from trailwarden.common.wire import link_pb2

log = logging.getLogger(__name__)


class CertificateRenewer:
    def __init__(self, home: Path) -> None:
        self.home = home
        self._pending_key: Any = None

    def request(
        self, identity: AgentIdentity, offer: link_pb2.RenewCertificate
    ) -> link_pb2.AgentMessage:
        """A new key, kept in memory until its certificate arrives, and its CSR."""
        from trailwarden.common import tls

        log.info("stage=send certificate renewal offered (%s): sending a CSR", offer.reason)
        self._pending_key = tls.new_private_key()
        csr = tls.build_csr(self._pending_key, f"agent {identity.name}")
        return link_pb2.AgentMessage(cert_request=link_pb2.CertificateRequest(csr_pem=csr))

    def install(self, identity: AgentIdentity, issued: link_pb2.CertificateIssued) -> AgentIdentity:
        """Store the renewed certificate with its key and bundle; the identity to use now.

        Raises CredentialsError (the old identity stays) when the answer cannot be used."""
        from trailwarden.common import tls

        key, self._pending_key = self._pending_key, None
        if issued.error:
            raise CredentialsError(f"the manager refused the certificate request: {issued.error}")
        if key is None:
            raise CredentialsError("a certificate arrived that this agent did not ask for")
        try:
            cert = tls.load_cert(bytes(issued.certificate_pem), "renewed certificate")
            cas = tls.load_certs(bytes(issued.ca_bundle_pem), "renewed CA bundle")
        except PkiError as exc:
            raise CredentialsError(str(exc)) from exc
        if not tls.public_keys_match(key, cert):
            raise CredentialsError("the renewed certificate does not certify the key sent")
        if tls.cert_identity(cert) != (tls.Role.AGENT, identity.agent_id):
            raise CredentialsError("the renewed certificate is for another identity")
        if tls.issuer_among(cert, cas) is None:
            raise CredentialsError("the renewed certificate is not issued by a CA of its bundle")
        key_pem = tls.key_to_pem(key)
        cert_pem = tls.cert_to_pem(cert)
        ca_pem = bytes(issued.ca_bundle_pem)
        replace_credentials(self.home, key_pem, cert_pem, ca_pem)
        log.info(
            "stage=send certificate renewed: sha256=%s expires %s; reconnecting with it",
            tls.fingerprint(cert)[:16],
            cert.not_valid_after_utc.date(),
        )
        return AgentIdentity(identity.agent_id, identity.name, key_pem, cert_pem, ca_pem)
