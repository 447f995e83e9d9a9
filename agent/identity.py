"""The agent's identity on disk: key (0600, generated here, never sent), certificate, CA."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trailwarden.common import keyfiles
from trailwarden.common.errors import CredentialsError

KEY_FILE = "agent.key"
CERT_FILE = "agent.pem"
CA_FILE = "ca.pem"
IDENTITY_FILE = "identity.json"


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    name: str
    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes

    @classmethod
    def load(cls, home: Path) -> AgentIdentity:
        try:
            info = json.loads((home / IDENTITY_FILE).read_text())
            key_pem = keyfiles.read_private_file(home / KEY_FILE)
            cert_pem = (home / CERT_FILE).read_bytes()
            ca_pem = (home / CA_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise CredentialsError(
                f"{home}: agent not enrolled ({exc.filename} missing); run "
                f"`trailwarden agent enroll --home {home} ...` first"
            ) from exc
        except (ValueError, KeyError) as exc:
            raise CredentialsError(f"{home / IDENTITY_FILE}: unreadable: {exc}") from exc
        return cls(
            agent_id=info["agent_id"],
            name=info["name"],
            key_pem=key_pem,
            cert_pem=cert_pem,
            ca_pem=ca_pem,
        )

    def save(self, home: Path, manager_enroll: str) -> None:
        keyfiles.write_private_file(home / KEY_FILE, self.key_pem)
        keyfiles.write_public_file(home / CERT_FILE, self.cert_pem)
        keyfiles.write_public_file(home / CA_FILE, self.ca_pem)
        (home / IDENTITY_FILE).write_text(
            json.dumps(
                {"agent_id": self.agent_id, "name": self.name, "enrolled_with": manager_enroll},
                indent=2,
            )
        )
