"""The agent registry: enrolled agents, enrollment tokens and the admin audit log.

Stored in the manager database (component "registry"). Tokens are kept only as SHA-256 hashes;
the token itself is shown once, when it is created. Revocation is a registry state checked on
every new link stream (gRPC Python has no CRL support).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from trailwarden.common.errors import NotFoundError, TokenError
from trailwarden.manager.store.sqlite.database import Database

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hostname TEXT NOT NULL DEFAULT '',
        cert_fingerprint TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'active',
        groups_json TEXT NOT NULL DEFAULT '[]',
        enrolled_ms INTEGER NOT NULL,
        revoked_ms INTEGER NOT NULL DEFAULT 0,
        last_seen_ms INTEGER NOT NULL DEFAULT 0,
        address TEXT NOT NULL DEFAULT '',
        agent_version TEXT NOT NULL DEFAULT '',
        applied_config_revision INTEGER NOT NULL DEFAULT 0,
        applied_config_hash TEXT NOT NULL DEFAULT '',
        status_json TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX agents_name ON agents(name, state);
    CREATE TABLE enrollment_tokens (
        token_hash TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        uses_left INTEGER NOT NULL,
        uses_total INTEGER NOT NULL,
        group_name TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT ''
    )
    """,
)

TOKEN_PREFIX = "tw1_"  # noqa: S105 - a prefix, not a secret


def now_ms() -> int:
    return int(time.time() * 1000)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_audit(tx: object, actor: str, action: str, target: str, detail: str) -> None:
    """One audit entry inside the caller's transaction ``tx`` (a sqlite3 connection), so a
    change and its audit entry commit together (console users use this too)."""
    tx.execute(  # type: ignore[attr-defined]
        "INSERT INTO audit_log (time_ms, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now_ms(), actor, action, target, detail),
    )


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: str
    name: str
    hostname: str
    cert_fingerprint: str
    state: str
    groups: tuple[str, ...]
    enrolled_ms: int
    revoked_ms: int
    last_seen_ms: int
    address: str
    agent_version: str
    applied_config_revision: int
    applied_config_hash: str
    status_json: str

    @property
    def revoked(self) -> bool:
        return self.state == "revoked"


@dataclass(frozen=True, slots=True)
class NewToken:
    token: str
    expires_ms: int
    uses: int
    group: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    time_ms: int
    actor: str
    action: str
    target: str
    detail: str


_AGENT_COLUMNS = (
    "id, name, hostname, cert_fingerprint, state, groups_json, enrolled_ms, revoked_ms, "
    "last_seen_ms, address, agent_version, applied_config_revision, applied_config_hash, "
    "status_json"
)


def _agent(row: Sequence[object]) -> AgentRecord:
    values = list(row)
    values[5] = tuple(json.loads(str(values[5])))
    return AgentRecord(*values)  # type: ignore[arg-type]


class Registry:
    def __init__(self, database: Database) -> None:
        self.db = database
        database.migrate("registry", MIGRATIONS)

    # ---- tokens ------------------------------------------------------------------------------

    def create_token(self, ttl_seconds: int, uses: int, group: str, actor: str) -> NewToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = now_ms()
        expires = created + ttl_seconds * 1000
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO enrollment_tokens (token_hash, created_ms, expires_ms, uses_left,"
                " uses_total, group_name, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (hash_token(token), created, expires, uses, uses, group, actor),
            )
            self._audit(
                tx,
                actor,
                "token.create",
                group,
                f"ttl={ttl_seconds}s uses={uses} expires_ms={expires}",
            )
        return NewToken(token=token, expires_ms=expires, uses=uses, group=group)

    def consume_token(self, token: str) -> str:
        """Use one use of ``token``; returns its group. TokenError says why it was refused."""
        wanted = hash_token(token)
        with self.db.transaction() as tx:
            row = tx.execute(
                "SELECT token_hash, expires_ms, uses_left, group_name FROM enrollment_tokens"
                " WHERE token_hash = ?",
                (wanted,),
            ).fetchone()
            # Compare digests in constant time even though the lookup already matched, so a
            # future change to the lookup cannot turn into a timing oracle.
            if row is None or not hmac.compare_digest(str(row[0]), wanted):
                raise TokenError("enrollment token not recognised")
            if int(row[1]) <= now_ms():
                raise TokenError("enrollment token expired; ask an admin for a new one")
            if int(row[2]) <= 0:
                raise TokenError("enrollment token already used up")
            tx.execute(
                "UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE token_hash = ?",
                (wanted,),
            )
        return str(row[3])

    # ---- agents ------------------------------------------------------------------------------

    def new_agent_id(self) -> str:
        return uuid.uuid4().hex[:12]

    def add_agent(
        self,
        *,
        agent_id: str,
        name: str,
        hostname: str,
        fingerprint: str,
        groups: Sequence[str],
        version: str,
        replace: str | None = None,
    ) -> None:
        with self.db.transaction() as tx:
            if replace:
                tx.execute(
                    "UPDATE agents SET state = 'revoked', revoked_ms = ? WHERE id = ?",
                    (now_ms(), replace),
                )
                self._audit(
                    tx,
                    f"agent:{agent_id}",
                    "agent.replace",
                    replace,
                    f"re-enrolled as {agent_id} with --force",
                )
            tx.execute(
                "INSERT INTO agents (id, name, hostname, cert_fingerprint, groups_json,"
                " enrolled_ms, agent_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    agent_id,
                    name,
                    hostname,
                    fingerprint,
                    json.dumps(list(groups)),
                    now_ms(),
                    version,
                ),
            )
            self._audit(
                tx,
                f"agent:{agent_id}",
                "agent.enroll",
                agent_id,
                f"name={name} host={hostname} groups={','.join(groups)}",
            )

    def active_by_name(self, name: str) -> AgentRecord | None:
        row = (
            self.db.connection()
            .execute(
                f"SELECT {_AGENT_COLUMNS} FROM agents WHERE name = ? AND state = 'active'", (name,)
            )
            .fetchone()
        )
        return _agent(row) if row else None

    def get(self, agent_id: str) -> AgentRecord:
        row = (
            self.db.connection()
            .execute(f"SELECT {_AGENT_COLUMNS} FROM agents WHERE id = ?", (agent_id,))
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no agent with ID {agent_id!r}")
        return _agent(row)

    def list_agents(self) -> list[AgentRecord]:
        rows = (
            self.db.connection()
            .execute(f"SELECT {_AGENT_COLUMNS} FROM agents ORDER BY name, enrolled_ms")
            .fetchall()
        )
        return [_agent(r) for r in rows]

    def revoke(self, agent_id: str, actor: str, detail: str = "") -> AgentRecord:
        with self.db.transaction() as tx:
            changed = tx.execute(
                "UPDATE agents SET state = 'revoked', revoked_ms = ? WHERE id = ?",
                (now_ms(), agent_id),
            ).rowcount
            if not changed:
                raise NotFoundError(f"no agent with ID {agent_id!r}")
            self._audit(tx, actor, "agent.revoke", agent_id, detail)
        return self.get(agent_id)

    def set_groups(self, agent_id: str, groups: Sequence[str], actor: str) -> AgentRecord:
        with self.db.transaction() as tx:
            changed = tx.execute(
                "UPDATE agents SET groups_json = ? WHERE id = ?",
                (json.dumps(list(groups)), agent_id),
            ).rowcount
            if not changed:
                raise NotFoundError(f"no agent with ID {agent_id!r}")
            self._audit(tx, actor, "agent.groups", agent_id, ",".join(groups))
        return self.get(agent_id)

    def record_hello(
        self,
        agent_id: str,
        *,
        address: str,
        version: str,
        hostname: str,
        applied_revision: int,
        applied_hash: str,
    ) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE agents SET last_seen_ms = ?, address = ?, agent_version = ?,"
                " hostname = ?, applied_config_revision = ?, applied_config_hash = ?"
                " WHERE id = ?",
                (now_ms(), address, version, hostname, applied_revision, applied_hash, agent_id),
            )

    def record_seen(self, agent_id: str, status_json: str | None = None) -> None:
        with self.db.transaction() as tx:
            if status_json is None:
                tx.execute("UPDATE agents SET last_seen_ms = ? WHERE id = ?", (now_ms(), agent_id))
            else:
                tx.execute(
                    "UPDATE agents SET last_seen_ms = ?, status_json = ? WHERE id = ?",
                    (now_ms(), status_json, agent_id),
                )

    def record_applied(self, agent_id: str, revision: int, config_hash: str) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE agents SET applied_config_revision = ?, applied_config_hash = ?"
                " WHERE id = ?",
                (revision, config_hash, agent_id),
            )

    # ---- audit -------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str = "", detail: str = "") -> None:
        with self.db.transaction() as tx:
            self._audit(tx, actor, action, target, detail)

    @staticmethod
    def _audit(tx: object, actor: str, action: str, target: str, detail: str) -> None:
        write_audit(tx, actor, action, target, detail)

    def audit_entries(self, limit: int = 100) -> list[AuditRecord]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT time_ms, actor, action, target, detail FROM audit_log"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [AuditRecord(*r) for r in rows]
