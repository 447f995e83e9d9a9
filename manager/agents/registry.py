"""The agent registry: enrolled agents, enrollment tokens and the admin audit log.

Stored in the manager database (component "registry"). Tokens are kept only as SHA-256 hashes;
the token itself is shown once, when it is created. Revocation is a registry state checked on
every new link stream (gRPC Python has no CRL support).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from trailwarden.common.errors import ConfigError, EnrollmentError, NotFoundError, TokenError
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
    # 2: a token may be issued for one agent name (the only way to replace a live agent).
    """
    ALTER TABLE enrollment_tokens ADD COLUMN for_agent TEXT NOT NULL DEFAULT ''
    """,
)

TOKEN_PREFIX = "tw1_"  # noqa: S105 - a prefix, not a secret
_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_agent_name(name: str) -> str:
    """``name`` if it is a valid agent name; EnrollmentError otherwise."""
    if not _AGENT_NAME.match(name):
        raise EnrollmentError(
            f"agent name {name[:80]!r} is not valid (letters, digits, '.', '_', '-'; at most 64)"
        )
    return name


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
    for_agent: str = ""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What one use of a token gives: the group to join, and the name it was issued for."""

    group: str
    for_agent: str


TOKEN_ID_DIGITS = 12
"""A token is named in listings by this many hex digits of its SHA-256 (never the token)."""
MIN_TOKEN_ID_DIGITS = 8
"""``admin token revoke`` accepts a unique prefix of the token ID this long or longer."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An enrollment token as listed: its ID (a hash prefix), never the token itself."""

    token_id: str
    created_ms: int
    expires_ms: int
    uses_left: int
    uses_total: int
    group: str
    created_by: str
    for_agent: str

    @property
    def state(self) -> str:
        if self.uses_left <= 0:
            return "used up"
        return "expired" if self.expires_ms <= now_ms() else "usable"


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

    def create_token(
        self, ttl_seconds: int, uses: int, group: str, actor: str, for_agent: str = ""
    ) -> NewToken:
        """A new token (shown once). ``for_agent``: only an agent of that name may enroll with
        it, and it may replace a live agent of that name (``agent enroll --force``)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = now_ms()
        expires = created + ttl_seconds * 1000
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO enrollment_tokens (token_hash, created_ms, expires_ms, uses_left,"
                " uses_total, group_name, created_by, for_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (hash_token(token), created, expires, uses, uses, group, actor, for_agent),
            )
            self._audit(
                tx,
                actor,
                "token.create",
                group,
                f"ttl={ttl_seconds}s uses={uses} expires_ms={expires}"
                + (f" for_agent={for_agent}" if for_agent else ""),
            )
        return NewToken(
            token=token, expires_ms=expires, uses=uses, group=group, for_agent=for_agent
        )

    def consume_token(self, token: str, name: str = "", replacing: str = "") -> TokenGrant:
        """Use one use of ``token`` to enroll agent ``name``; TokenError says why it was refused.

        ``replacing``: the ID of the live agent of that name this enrollment would revoke. Only
        a token issued for that name (``admin token create --for-agent NAME``) may do that: any
        fresh token used to take over a live agent's name (issue 20)."""
        wanted = hash_token(token)
        with self.db.transaction() as tx:
            row = tx.execute(
                "SELECT token_hash, expires_ms, uses_left, group_name, for_agent"
                " FROM enrollment_tokens WHERE token_hash = ?",
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
            for_agent = str(row[4])
            if for_agent and for_agent != name:
                raise TokenError(f"this enrollment token is for agent {for_agent!r} only")
            if replacing and for_agent != name:
                raise TokenError(
                    f"an agent named {name!r} is enrolled and live (ID {replacing}); replacing "
                    f"it needs a token issued for that name (trailwarden admin token create "
                    f"--for-agent {name})"
                )
            tx.execute(
                "UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE token_hash = ?",
                (wanted,),
            )
        return TokenGrant(group=str(row[3]), for_agent=for_agent)

    _ENROLLMENT_COLUMNS = (
        "token_hash, created_ms, expires_ms, uses_left, uses_total, group_name, created_by,"
        " for_agent"
    )

    @staticmethod
    def _token(row: Sequence[object]) -> TokenRecord:
        values = list(row)
        values[0] = str(values[0])[:TOKEN_ID_DIGITS]
        return TokenRecord(*values)  # type: ignore[arg-type]

    def list_tokens(self) -> list[TokenRecord]:
        """Every token still stored (usable, expired or used up), newest first."""
        rows = (
            self.db.connection()
            .execute(
                f"SELECT {self._ENROLLMENT_COLUMNS} FROM enrollment_tokens ORDER BY created_ms DESC"
            )
            .fetchall()
        )
        return [self._token(r) for r in rows]

    def revoke_token(self, token_id: str, actor: str) -> TokenRecord:
        """Delete the token whose ID starts with ``token_id`` (it can no longer enroll anyone).

        The ID is a prefix of the stored hash, so it must be hex, at least
        ``MIN_TOKEN_ID_DIGITS`` long and match exactly one token."""
        wanted = token_id.strip().lower()
        if not re.fullmatch(rf"[0-9a-f]{{{MIN_TOKEN_ID_DIGITS},64}}", wanted):
            # Never echo the value: an admin may paste the token itself here.
            given = "an enrollment token" if wanted.startswith(TOKEN_PREFIX) else "not a token ID"
            raise ConfigError(
                f"token_id: {given} ({len(wanted)} characters); expected the ID `admin token "
                f"list` shows ({MIN_TOKEN_ID_DIGITS} to 64 hex digits)"
            )
        with self.db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {self._ENROLLMENT_COLUMNS} FROM enrollment_tokens"
                " WHERE substr(token_hash, 1, ?) = ?",
                (len(wanted), wanted),
            ).fetchall()
            if not rows:
                raise NotFoundError(f"no enrollment token with ID {wanted!r}")
            if len(rows) > 1:
                raise ConfigError(f"token ID {wanted!r} matches {len(rows)} tokens; give more")
            tx.execute("DELETE FROM enrollment_tokens WHERE token_hash = ?", (rows[0][0],))
            record = self._token(rows[0])
            self._audit(
                tx,
                actor,
                "token.revoke",
                record.token_id,
                f"group={record.group} for_agent={record.for_agent} uses_left={record.uses_left}",
            )
        return record

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
                    f"re-enrolled as {agent_id} with --force and a token for {name!r}",
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

    def remove_agent(self, agent_id: str, actor: str) -> AgentRecord:
        """Delete a (revoked) agent from the registry; its alerts stay in the alert store.

        Callers revoke a live agent first (``revocation.revoke_agent``) so its link is cut; an
        unknown ID on a later link is refused like a revoked one."""
        record = self.get(agent_id)
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM agents WHERE id = ?", (agent_id,))
            self._audit(
                tx,
                actor,
                "agent.remove",
                agent_id,
                f"name={record.name} state={record.state} groups={','.join(record.groups)}",
            )
        return record

    def rename_agent(self, agent_id: str, new_name: str, actor: str) -> tuple[AgentRecord, str]:
        """Give an agent a new name (unique among live agents); its ID, the certificate's CN,
        stays. Returns the renamed agent and its old name."""
        try:
            check_agent_name(new_name)
        except EnrollmentError as exc:
            raise ConfigError(f"new_name: {exc}") from exc
        with self.db.transaction() as tx:
            row = tx.execute("SELECT name, state FROM agents WHERE id = ?", (agent_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no agent with ID {agent_id!r}")
            old_name = str(row[0])
            if row[1] == "revoked":
                raise ConfigError(f"agent {agent_id} ({old_name}) is revoked; it cannot be renamed")
            taken = tx.execute(
                "SELECT id FROM agents WHERE name = ? AND state = 'active' AND id != ?",
                (new_name, agent_id),
            ).fetchone()
            if taken is not None:
                raise ConfigError(f"new_name {new_name!r} is already the name of agent {taken[0]}")
            tx.execute("UPDATE agents SET name = ? WHERE id = ?", (new_name, agent_id))
            self._audit(tx, actor, "agent.rename", agent_id, f"{old_name} -> {new_name}")
        return self.get(agent_id), old_name

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
