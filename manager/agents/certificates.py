"""What the manager knows of each agent's certificate: expiry, issuing CA, a renewal underway.

Its own table (component "agent_certificates") beside the registry's: filled at enrollment,
at every link connection (from the certificate the agent presented) and at renewal. A renewed
certificate is *pending* until the agent first connects with it: until then the agent's
current certificate stays valid, so an agent that crashed before storing its new certificate
simply connects with the old one and is offered a renewal again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trailwarden.manager.agents.registry import now_ms, write_audit
from trailwarden.manager.store.sqlite.database import Database

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE agent_certificates (
        agent_id TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        not_after_ms INTEGER NOT NULL,
        ca_sha256 TEXT NOT NULL,
        pending_fingerprint TEXT NOT NULL DEFAULT '',
        pending_not_after_ms INTEGER NOT NULL DEFAULT 0,
        pending_ca_sha256 TEXT NOT NULL DEFAULT '',
        renewed_ms INTEGER NOT NULL DEFAULT 0
    )
    """,
)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """One certificate: its SHA-256, when it expires, and the CA that issued it."""

    fingerprint: str
    not_after_ms: int
    ca_sha256: str


class AgentCertificates:
    def __init__(self, database: Database) -> None:
        self.db = database
        database.migrate("agent_certificates", MIGRATIONS)

    def record(self, agent_id: str, cert: CertificateInfo) -> None:
        """The agent's certificate in use now (at enrollment, or as presented on the link)."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO agent_certificates (agent_id, fingerprint, not_after_ms, ca_sha256)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, not_after_ms = excluded.not_after_ms,"
                " ca_sha256 = excluded.ca_sha256",
                (agent_id, cert.fingerprint, cert.not_after_ms, cert.ca_sha256),
            )

    def set_pending(self, agent_id: str, cert: CertificateInfo, reason: str) -> None:
        """A renewed certificate issued over the link, valid once the agent connects with it."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE agent_certificates SET pending_fingerprint = ?, pending_not_after_ms = ?,"
                " pending_ca_sha256 = ? WHERE agent_id = ?",
                (cert.fingerprint, cert.not_after_ms, cert.ca_sha256, agent_id),
            )
            write_audit(
                tx,
                f"agent:{agent_id}",
                "agent.cert.issue",
                agent_id,
                f"sha256={cert.fingerprint} ca={cert.ca_sha256} not_after_ms={cert.not_after_ms}"
                f" reason={reason}",
            )

    def is_pending(self, agent_id: str, fingerprint: str) -> bool:
        row = (
            self.db.connection()
            .execute(
                "SELECT 1 FROM agent_certificates WHERE agent_id = ? AND pending_fingerprint = ?"
                " AND pending_fingerprint != ''",
                (agent_id, fingerprint),
            )
            .fetchone()
        )
        return row is not None

    def promote(self, agent_id: str, fingerprint: str) -> bool:
        """The agent connected with its pending certificate: it becomes the only valid one
        (the registry's fingerprint moves to it, the old certificate is superseded)."""
        with self.db.transaction() as tx:
            changed = tx.execute(
                "UPDATE agent_certificates SET fingerprint = pending_fingerprint,"
                " not_after_ms = pending_not_after_ms, ca_sha256 = pending_ca_sha256,"
                " pending_fingerprint = '', pending_not_after_ms = 0, pending_ca_sha256 = '',"
                " renewed_ms = ? WHERE agent_id = ? AND pending_fingerprint = ?"
                " AND pending_fingerprint != ''",
                (now_ms(), agent_id, fingerprint),
            ).rowcount
            if not changed:
                return False
            tx.execute(
                "UPDATE agents SET cert_fingerprint = ? WHERE id = ?", (fingerprint, agent_id)
            )
            write_audit(
                tx,
                f"agent:{agent_id}",
                "agent.cert.renew",
                agent_id,
                f"connected with its renewed certificate sha256={fingerprint}",
            )
        return True

    def all(self) -> dict[str, CertificateInfo]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT agent_id, fingerprint, not_after_ms, ca_sha256 FROM agent_certificates"
            )
            .fetchall()
        )
        return {str(r[0]): CertificateInfo(str(r[1]), int(r[2]), str(r[3])) for r in rows}
