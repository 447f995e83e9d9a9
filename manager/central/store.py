"""Config revisions and per-agent status, in the manager database (component "config").

Every change — a document set or rolled back for a group or an agent, or a group assignment
that changes what an agent should run — takes the next number from one counter, so revision
numbers are monotonic across the whole manager and every number names one change. A revision
row keeps the document's TOML exactly as the admin sent it, its SHA-256, who and when.

``config_agents`` holds, per agent, the *desired* effective config (revision, hash, TOML — what
the agent should run) and what the agent last reported (*applied* revision and hash, ``state``
applied | pending | failed, the agent's error, when). A change recomputes the desired config of
the agents it touches inside the same transaction, after checking each one with the agent's
parser: a change that would give any agent an invalid config is refused as a whole.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from trailwarden.common.errors import ConfigError, NotFoundError
from trailwarden.common.schema.central import config_hash
from trailwarden.common.tomlconfig import parse_toml_text
from trailwarden.manager.agents.registry import AgentRecord, Registry
from trailwarden.manager.central.document import (
    NO_CONFIG,
    EffectiveConfig,
    check_group_name,
    effective_config,
    parse_document,
    validate_complete,
)
from trailwarden.manager.store.sqlite.database import Database

log = logging.getLogger(__name__)

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE config_counter (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
    );
    INSERT INTO config_counter (id, value) VALUES (1, 0);
    CREATE TABLE config_revisions (
        revision INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        target TEXT NOT NULL,
        hash TEXT NOT NULL,
        config_toml TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        author TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX config_revisions_target ON config_revisions (scope, target, revision);
    CREATE TABLE config_agents (
        agent_id TEXT PRIMARY KEY,
        desired_revision INTEGER NOT NULL,
        desired_hash TEXT NOT NULL,
        desired_toml TEXT NOT NULL,
        applied_revision INTEGER NOT NULL DEFAULT 0,
        applied_hash TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'pending',
        error TEXT NOT NULL DEFAULT '',
        updated_ms INTEGER NOT NULL
    )
    """,
)

GROUP = "group"
AGENT = "agent"
APPLIED = "applied"
PENDING = "pending"
FAILED = "failed"
HISTORY_LIMIT = 100
MAX_COMMENT_CHARS = 4000
"""The longest revision comment (kept in history and the audit log)."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Target:
    """Whose document: a group or one agent (exactly one is set)."""

    group: str = ""
    agent_id: str = ""

    def __post_init__(self) -> None:
        if bool(self.group) == bool(self.agent_id):
            raise ConfigError("name exactly one of a group or an agent")

    @property
    def scope(self) -> str:
        return GROUP if self.group else AGENT

    @property
    def name(self) -> str:
        return self.group or self.agent_id

    def __str__(self) -> str:
        return f"{self.scope} {self.name}"


@dataclass(frozen=True)
class Revision:
    target: Target
    revision: int
    hash: str
    toml: str
    created_ms: int
    author: str
    comment: str


@dataclass(frozen=True)
class Desired:
    """The effective config an agent should run."""

    agent_id: str
    revision: int
    hash: str
    toml: str


@dataclass(frozen=True)
class AgentConfigState:
    agent_id: str
    name: str
    desired_revision: int
    desired_hash: str
    applied_revision: int
    applied_hash: str
    state: str
    error: str
    updated_ms: int


@dataclass(frozen=True)
class StatusReport:
    """One ConfigStatus an agent sent."""

    agent_id: str
    revision: int
    hash: str
    state: str
    error: str = ""


@dataclass(frozen=True)
class Change:
    """The result of a config change: the new revision (if any) and what to push to whom."""

    revision: Revision | None
    pushes: tuple[Desired, ...]


_REVISION_COLUMNS = "revision, scope, target, hash, config_toml, created_ms, author, comment"


def _revision(row: Sequence[Any]) -> Revision:
    scope, name = str(row[1]), str(row[2])
    target = Target(group=name) if scope == GROUP else Target(agent_id=name)
    return Revision(target, int(row[0]), str(row[3]), str(row[4]), int(row[5]), row[6], row[7])


class ConfigStore:
    """Revisions, desired and applied config per agent (see the module docstring)."""

    def __init__(self, database: Database, registry: Registry) -> None:
        self.db = database
        self.registry = registry
        database.migrate("config", MIGRATIONS)
        # Parsed documents by content hash, not revision number: a number taken by a change
        # that was then refused (rolled back) is used again by the next change.
        self._parsed: dict[str, dict[str, Any]] = {}

    # ---- documents -----------------------------------------------------------------------

    def set_document(self, target: Target, text: str, author: str, comment: str = "") -> Change:
        """Check and store a new revision of ``target``'s document; recompute its agents."""
        origin = f"config for {target}"
        if target.group:
            check_group_name(target.group)
        if len(comment) > MAX_COMMENT_CHARS:
            raise ConfigError(
                f"{origin}: comment is {len(comment)} characters; at most {MAX_COMMENT_CHARS}"
            )
        data = parse_document(text, origin)
        if target.group:
            validate_complete(data, origin)
        else:
            self._agent(target.agent_id)
        latest = self.history(target, 1)
        if latest and latest[0].hash == config_hash(text):
            # The same document again (an identical re-import, a repeated set): no new
            # revision, nothing to push; the caller is told which revision already holds it.
            log.info("stage=config %s: unchanged, revision %d kept", target, latest[0].revision)
            return Change(latest[0], ())
        with self.db.transaction() as tx:
            revision = self._next(tx)
            row = Revision(target, revision, config_hash(text), text, now_ms(), author, comment)
            tx.execute(
                f"INSERT INTO config_revisions ({_REVISION_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    revision,
                    target.scope,
                    target.name,
                    row.hash,
                    text,
                    row.created_ms,
                    author,
                    comment,
                ),
            )
            self._parsed[row.hash] = data
            pushes = self._refresh(tx, self._agents_of(target), revision)
        log.info(
            "stage=config revision %d for %s by %s: %d agent(s) to update",
            revision,
            target,
            author,
            len(pushes),
        )
        return Change(row, pushes)

    def rollback(self, target: Target, to_revision: int, author: str) -> Change:
        """A new revision whose document is revision ``to_revision``'s (history is kept)."""
        if to_revision < 1:
            raise ConfigError(f"to_revision must be a revision number (>= 1), not {to_revision}")
        old = self.revision(to_revision)
        if old.target != target:
            raise NotFoundError(f"revision {to_revision} is not a revision of {target}'s config")
        return self.set_document(target, old.toml, author, f"rollback to revision {to_revision}")

    def revision(self, number: int) -> Revision:
        row = (
            self.db.connection()
            .execute(
                f"SELECT {_REVISION_COLUMNS} FROM config_revisions WHERE revision = ?", (number,)
            )
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no config revision {number}")
        return _revision(row)

    def current(self, target: Target) -> Revision:
        history = self.history(target, 1)
        if not history:
            raise NotFoundError(f"no config set for {target}")
        return history[0]

    def history(
        self, target: Target, limit: int = HISTORY_LIMIT, before: int | None = None
    ) -> list[Revision]:
        """Revisions of ``target``'s document, newest first (only those older than revision
        ``before``, when given: the next page)."""
        rows = (
            self.db.connection()
            .execute(
                f"SELECT {_REVISION_COLUMNS} FROM config_revisions WHERE scope = ? AND target = ?"
                " AND revision < ? ORDER BY revision DESC LIMIT ?",
                (target.scope, target.name, before if before is not None else 2**63 - 1, limit),
            )
            .fetchall()
        )
        return [_revision(r) for r in rows]

    # ---- groups --------------------------------------------------------------------------

    def assign(
        self, agent_id: str, group: str, author: str, *, unassign: bool = False
    ) -> tuple[AgentRecord, Change]:
        """Add ``group`` to (or remove it from) the agent's groups, if its config stays valid."""
        check_group_name(group)
        agent = self._agent(agent_id)
        groups = [g for g in agent.groups if g != group]
        if not unassign:
            groups.append(group)
        elif len(groups) == len(agent.groups):
            raise NotFoundError(f"agent {agent_id} is not in group {group!r}")
        with self.db.transaction() as tx:
            self._effective(tx, agent_id, groups, {})  # refuse before changing anything
        record = self.registry.set_groups(agent_id, groups, author)
        with self.db.transaction() as tx:
            pushes = self._refresh(tx, [record], None)
        return record, Change(None, pushes)

    # ---- agents --------------------------------------------------------------------------

    def desired(self, agent_id: str) -> Desired:
        """What ``agent_id`` should run (computed from the documents on first use)."""
        with self.db.transaction() as tx:
            return self._desired_row(tx, agent_id)

    def record_hello(self, agent_id: str, revision: int, applied_hash: str) -> Desired | None:
        """Note what a (re)connecting agent runs; the config to send it if that is not current."""
        with self.db.transaction() as tx:
            desired = self._desired_row(tx, agent_id)
            current = (revision, applied_hash) == (desired.revision, desired.hash)
            tx.execute(
                "UPDATE config_agents SET applied_revision = ?, applied_hash = ?, state = ?,"
                " error = CASE WHEN ? THEN '' ELSE error END, updated_ms = ? WHERE agent_id = ?",
                (
                    revision,
                    applied_hash,
                    APPLIED if current else PENDING,
                    current,
                    now_ms(),
                    agent_id,
                ),
            )
        return None if current else desired

    def record_statuses(self, reports: Iterable[StatusReport]) -> list[StatusReport]:
        """Apply agents' ConfigStatus reports in one transaction; returns the applied ones."""
        applied: list[StatusReport] = []
        stamp = now_ms()
        with self.db.transaction() as tx:
            for report in reports:
                row = tx.execute(
                    "SELECT desired_revision, desired_hash FROM config_agents WHERE agent_id = ?",
                    (report.agent_id,),
                ).fetchone()
                if row is None:
                    continue
                wanted = (int(row[0]), str(row[1]))
                if report.state == APPLIED:
                    state = APPLIED if (report.revision, report.hash) == wanted else PENDING
                    tx.execute(
                        "UPDATE config_agents SET applied_revision = ?, applied_hash = ?,"
                        " state = ?, error = '', updated_ms = ? WHERE agent_id = ?",
                        (report.revision, report.hash, state, stamp, report.agent_id),
                    )
                    applied.append(report)
                elif report.revision == wanted[0]:
                    tx.execute(
                        "UPDATE config_agents SET state = ?, error = ?, updated_ms = ?"
                        " WHERE agent_id = ?",
                        (
                            FAILED,
                            report.error or "failed (no reason given)",
                            stamp,
                            report.agent_id,
                        ),
                    )
                else:
                    log.info(
                        "stage=config agent=%s failed stale revision %d (wanted %d): %s",
                        report.agent_id,
                        report.revision,
                        wanted[0],
                        report.error,
                    )
        return applied

    def statuses(self, agent_id: str = "") -> list[AgentConfigState]:
        """Per agent: desired and applied revision, state, error, when (active agents)."""
        agents = [self._agent(agent_id)] if agent_id else self.registry.list_agents()
        out: list[AgentConfigState] = []
        with self.db.transaction() as tx:
            for agent in agents:
                if agent.revoked:
                    continue
                self._desired_row(tx, agent.id)
                row = tx.execute(
                    "SELECT desired_revision, desired_hash, applied_revision, applied_hash, state,"
                    " error, updated_ms FROM config_agents WHERE agent_id = ?",
                    (agent.id,),
                ).fetchone()
                out.append(AgentConfigState(agent.id, agent.name, *row))
        return out

    # ---- internals -----------------------------------------------------------------------

    def _agent(self, agent_id: str) -> AgentRecord:
        record = self.registry.get(agent_id)
        if record.revoked:
            raise ConfigError(f"agent {agent_id} ({record.name}) is revoked")
        return record

    def _agents_of(self, target: Target) -> list[AgentRecord]:
        if target.agent_id:
            return [self._agent(target.agent_id)]
        return [
            a for a in self.registry.list_agents() if not a.revoked and target.group in a.groups
        ]

    @staticmethod
    def _next(tx: sqlite3.Connection) -> int:
        tx.execute("UPDATE config_counter SET value = value + 1 WHERE id = 1")
        return int(tx.execute("SELECT value FROM config_counter WHERE id = 1").fetchone()[0])

    def _latest(self, tx: sqlite3.Connection) -> dict[tuple[str, str], int]:
        rows = tx.execute(
            "SELECT scope, target, MAX(revision) FROM config_revisions GROUP BY scope, target"
        ).fetchall()
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    def _document(self, tx: sqlite3.Connection, revision: int) -> dict[str, Any]:
        content_hash, text = tx.execute(
            "SELECT hash, config_toml FROM config_revisions WHERE revision = ?", (revision,)
        ).fetchone()
        data = self._parsed.get(str(content_hash))
        if data is None:
            data = parse_toml_text(str(text), f"config revision {revision}")
            self._parsed[str(content_hash)] = data
        return data

    def _effective(
        self,
        tx: sqlite3.Connection,
        agent_id: str,
        groups: Sequence[str],
        memo: dict[tuple[int, ...], EffectiveConfig],
        latest: dict[tuple[str, str], int] | None = None,
    ) -> EffectiveConfig:
        latest = self._latest(tx) if latest is None else latest
        keys = [(GROUP, g) for g in groups] + [(AGENT, agent_id)]
        revisions = tuple(latest[k] for k in keys if k in latest)
        if revisions not in memo:
            origin = f"effective config of agent {agent_id} (groups {', '.join(groups) or '-'})"
            documents = [self._document(tx, r) for r in revisions]
            memo[revisions] = effective_config(documents, origin) if documents else NO_CONFIG
        return memo[revisions]

    def _refresh(
        self, tx: sqlite3.Connection, agents: Sequence[AgentRecord], revision: int | None
    ) -> tuple[Desired, ...]:
        """Recompute the agents' desired configs; the ones that changed (to push)."""
        latest = self._latest(tx)
        memo: dict[tuple[int, ...], EffectiveConfig] = {}
        effective = {a.id: self._effective(tx, a.id, a.groups, memo, latest) for a in agents}
        changed: list[Desired] = []
        for agent in agents:
            config = effective[agent.id]
            old = tx.execute(
                "SELECT desired_hash FROM config_agents WHERE agent_id = ?", (agent.id,)
            ).fetchone()
            if old is not None and str(old[0]) == config.hash:
                continue
            number = 0 if config.empty else revision or self._next(tx)
            if revision is None and not config.empty:
                revision = number  # one number per change, however many agents it touches
            desired = Desired(agent.id, number, config.hash, config.toml)
            push = old is not None or not config.empty  # a new agent with nothing: nothing to do
            tx.execute(
                "INSERT INTO config_agents (agent_id, desired_revision, desired_hash,"
                " desired_toml, state, error, updated_ms) VALUES (?, ?, ?, ?, ?, '', ?)"
                " ON CONFLICT (agent_id) DO UPDATE SET"
                " desired_revision = excluded.desired_revision,"
                " desired_hash = excluded.desired_hash, desired_toml = excluded.desired_toml,"
                " state = excluded.state, error = '', updated_ms = excluded.updated_ms",
                (
                    agent.id,
                    number,
                    config.hash,
                    config.toml,
                    PENDING if push else APPLIED,
                    now_ms(),
                ),
            )
            if push:
                changed.append(desired)
        return tuple(changed)

    def _desired_row(
        self,
        tx: sqlite3.Connection,
        agent_id: str,
        latest: dict[tuple[str, str], int] | None = None,
        memo: dict[tuple[int, ...], EffectiveConfig] | None = None,
    ) -> Desired:
        row = tx.execute(
            "SELECT desired_revision, desired_hash, desired_toml FROM config_agents"
            " WHERE agent_id = ?",
            (agent_id,),
        ).fetchone()
        if row is not None:
            return Desired(agent_id, int(row[0]), str(row[1]), str(row[2]))
        # First time we hear of this agent: what its groups give as of the latest change.
        record = self.registry.get(agent_id)
        try:
            config = self._effective(tx, agent_id, record.groups, memo or {}, latest)
        except ConfigError as exc:
            log.error("stage=config agent=%s has no valid config: %s", agent_id, exc)
            config = NO_CONFIG
        number = 0
        if not config.empty:
            number = int(tx.execute("SELECT value FROM config_counter WHERE id = 1").fetchone()[0])
        tx.execute(
            "INSERT INTO config_agents (agent_id, desired_revision, desired_hash, desired_toml,"
            " state, updated_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (
                agent_id,
                number,
                config.hash,
                config.toml,
                APPLIED if config.empty else PENDING,
                now_ms(),
            ),
        )
        return Desired(agent_id, number, config.hash, config.toml)
