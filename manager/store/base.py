"""The alert store interface and its domain types.

The ingest pipeline calls ``seen_events`` (dedupe before the rules) and ``commit`` (one
transaction per batch, before the ack); the Admin API calls ``query``, ``follow`` and ``stats``;
a timer calls ``prune``. SQLite (``sqlite.alerts.SqliteAlertStore``) is the default
implementation; a PostgreSQL one can follow behind the same protocol, which is why nothing here
mentions a driver, a connection or SQL.

Notes for a PostgreSQL implementation shared by several managers: ``commit`` must stay one
transaction and use ``INSERT ... ON CONFLICT DO NOTHING`` on the same two unique keys (event key
+ recipient account; event ID + recipient account + rule) so concurrent managers cannot both
store an event. The follow cursor must only ever move past committed rows: a sequence value
is assigned before commit, so concurrent writers can commit out of order; follow up to the
oldest in-flight transaction (``pg_snapshot_xmin``) or by a commit-ordered column, or a
follower may skip an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol

from trailwarden.manager.analysis.alert import Alert

DEFAULT_LIMIT = 50
"""Alerts per page when a query names no limit."""
MAX_LIMIT = 10_000
"""The most alerts one page may hold; larger limits are refused, page instead."""


@dataclass(frozen=True, slots=True)
class EventRow:
    """One received CloudTrail record that the store has not seen before."""

    event_key: str
    """CloudTrail eventID, or ``sha256:<hex of raw>`` when the record has none."""
    recipient_account: str
    """CloudTrail recipientAccountId; with ``event_key`` the dedupe key."""
    agent_id: str
    """The agent that sent it (from its certificate)."""
    event_time: str
    """CloudTrail eventTime ('' if missing)."""
    location: str
    """``bucket/key`` (or file path) the record came from."""
    raw: bytes
    """The record's exact bytes; archived only when the archive is on."""


class StatsField(Enum):
    """What ``stats`` groups by."""

    RULE = "rule"
    LEVEL = "level"
    ACCOUNT = "account"
    USER = "user"
    AGENT = "agent"
    HOUR = "hour"


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """A validated alert query (build it with ``trailwarden.manager.store.query``).

    Time bounds apply to the alert timestamp (when the manager raised it). Empty strings and
    empty tuples mean "no filter"; every given filter must hold (AND).
    """

    start: datetime | None = None
    """Inclusive lower bound of the alert timestamp (aware UTC)."""
    end: datetime | None = None
    """Exclusive upper bound of the alert timestamp (aware UTC)."""
    rule_ids: tuple[str, ...] = ()
    """Any of these rule IDs."""
    min_level: int = 0
    """Only alerts at this level or above."""
    agent_id: str = ""
    account: str = ""
    """AWS account the event happened in."""
    region: str = ""
    user: str = ""
    """Principal name as stored on the alert (exact match)."""
    event_name: str = ""
    """CloudTrail eventName (exact match)."""
    search: str = ""
    """Case-insensitive substring of the full alert JSON (scans the rows the other filters keep)."""
    limit: int = DEFAULT_LIMIT
    """Alerts per page (1..MAX_LIMIT)."""
    page_token: str = ""
    """Opaque token from a previous ``AlertPage``; empty for the first page."""


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """A validated stats query: count alerts in a time range, grouped by one field."""

    start: datetime | None = None
    end: datetime | None = None
    by: StatsField = StatsField.RULE


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as read back from the store: its indexed fields plus the full JSON."""

    cursor: int
    """Store-assigned, increasing in insertion order; what ``follow`` continues from."""
    id: str
    timestamp: str
    """RFC 3339 UTC, when the alert was raised."""
    event_time: str
    """CloudTrail eventTime as it came ('' if missing)."""
    rule_id: str
    level: int
    description: str
    groups: tuple[str, ...]
    mitre_ids: tuple[str, ...]
    firedtimes: int
    agent_id: str
    agent_name: str
    account: str
    region: str
    event_source: str
    event_name: str
    user: str
    source_ip: str
    event_id: str
    recipient_account: str
    json: str
    """The full alert in Wazuh's alerts.json shape (``Alert.to_wazuh()``), serialised."""


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page of a query, newest first."""

    alerts: list[StoredAlert]
    next_page_token: str = ""
    """Pass back as ``AlertQuery.page_token`` for the next page; empty when there is no more."""


@dataclass(frozen=True, slots=True)
class StatsBucket:
    key: str
    """The group's value (rule ID, level, account, ..., or the hour as ``2026-11-26T15:00Z``)."""
    label: str
    """Something readable beside the key (rule description, agent name); may be empty."""
    count: int


@dataclass(frozen=True, slots=True)
class StatsResult:
    by: StatsField
    buckets: list[StatsBucket]
    """Largest count first; by hour, oldest hour first."""
    total: int
    """Alerts in the time range (the sum of the buckets)."""


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one retention pass removed."""

    alerts_by_age: int = 0
    archive_by_age: int = 0
    dedupe_by_age: int = 0
    alerts_by_size: int = 0
    archive_by_size: int = 0
    bytes_in_use: int = 0
    """Database bytes in use after the pass (pages in use x page size)."""
    notes: tuple[str, ...] = field(default=())
    """Human-readable remarks (e.g. size cap reached), for the log."""

    @property
    def total(self) -> int:
        return (
            self.alerts_by_age
            + self.archive_by_age
            + self.dedupe_by_age
            + self.alerts_by_size
            + self.archive_by_size
        )


class AlertStore(Protocol):
    """Where alerts (and seen event keys, and optionally raw events) are kept.

    Every method may raise ``StoreError`` (database busy, disk full, schema problem); the
    caller of ``commit`` must then withhold the ack so the agent resends.
    """

    def seen_events(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which ``(event_key, recipient_account)`` pairs are already stored."""
        ...

    def commit(self, events: Sequence[EventRow], alerts: Sequence[Alert]) -> int:
        """Remember the events, archive them if enabled, store the alerts: one transaction.

        Returns the number of alerts stored. An alert whose ``(event_id, recipient_account,
        rule_id)`` is already stored is ignored, so a resent batch never doubles an alert.
        """
        ...

    def query(self, q: AlertQuery) -> AlertPage:
        """Alerts matching ``q``, newest first, one page at a time."""
        ...

    def follow(self, q: AlertQuery, after_cursor: int | None) -> tuple[list[StoredAlert], int]:
        """Alerts stored after ``after_cursor`` that match ``q``, oldest first (at most
        ``q.limit``), and the cursor to pass next time. ``None`` starts from now (returns no
        alerts, only the cursor); ``0`` starts from the beginning, so with ``q.start`` set it
        replays the alerts raised since then first. ``q.end`` and ``q.page_token`` are ignored."""
        ...

    def ping(self) -> None:
        """StoreError unless the store can be reached now (a fresh connection answers)."""
        ...

    def counts(self) -> dict[str, int]:
        """Rows kept: ``alerts``, ``archive`` (raw events), ``seen_events`` (dedupe keys)."""
        ...

    def stats(self, q: StatsQuery) -> StatsResult:
        """Alert counts in a time range grouped by ``q.by``."""
        ...

    def prune(self, now: datetime | None = None) -> PruneResult:
        """Apply the retention policy (age, then size cap)."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
