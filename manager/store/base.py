"""The alert store interface and its domain types.

The ingest pipeline calls ``seen_events`` (dedupe before the rules) and ``commit`` (one
transaction per batch, before the ack); the Admin API and the console call ``query``,
``follow``, ``stats`` and ``series`` with queries built and validated by ``store.query``; the
outputs' delivery loops call ``follow`` and ``output_cursor``/``save_output_cursor``; a timer
calls ``prune``. Time ranges follow CloudTrail ``eventTime`` unless a query's ``time_basis``
says arrival. SQLite (``sqlite.alerts.SqliteAlertStore``) is the default
implementation; a PostgreSQL one can follow behind the same protocol, which is why nothing here
mentions a driver, a connection or SQL.

Notes for a PostgreSQL implementation shared by several managers: ``commit`` must stay one
transaction and use ``INSERT ... ON CONFLICT DO NOTHING`` on the same two unique keys (event key
+ recipient account; event ID + recipient account + rule) so concurrent managers cannot both
store an event. The follow cursor must only ever move past committed rows: a sequence value
is assigned before commit, so concurrent writers can commit out of order; follow up to the
oldest in-flight transaction (``pg_snapshot_xmin``) or by a commit-ordered column, or a
follower may skip an alert. Stats and series must count by event time (an alert without one
by its arrival) and give the same answers as the SQLite backend, whose contract tests in
``tests/manager/store/`` compare them with counts made in Python; the SQLite rollup counts
(``sqlite/rollup.py``) are one way to be fast, not part of the contract.
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
DEFAULT_SERIES_TOP = 5
"""Groups a split series shows when the query names no number (the rest is "other")."""


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


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """A received record as the store's event archive holds it (``[store] archive`` on)."""

    cursor: int
    """Store-assigned, increasing in insertion order; what ``follow_archive`` continues from."""
    timestamp: str
    """RFC 3339 UTC, when the manager committed it."""
    agent_id: str
    event_time: str
    """CloudTrail eventTime as RFC 3339 UTC ('' if missing)."""
    location: str
    raw: bytes

    @property
    def id(self) -> str:
        """Unique among archived events: the cursor, as text (the archives file's ``id``)."""
        return str(self.cursor)


class TimeBasis(Enum):
    """Which clock a query's time range (and time buckets) follow."""

    EVENT = "event"
    """CloudTrail ``eventTime`` (the default): a backfill of last week shows under last week.
    An alert whose record had no readable eventTime falls back to its arrival time."""
    ARRIVAL = "arrival"
    """When the manager raised the alert (the alert ``timestamp``)."""


class StatsField(Enum):
    """What ``stats`` groups by and what a series may be split by (``HOUR``/``DAY`` only group)."""

    RULE = "rule"
    LEVEL = "level"
    ACCOUNT = "account"
    REGION = "region"
    USER = "user"
    EVENT_NAME = "event-name"
    EVENT_SOURCE = "event-source"
    SOURCE = "source"
    """``aws.source`` (cloudtrail, guardduty, ...)."""
    BUCKET = "bucket"
    """``aws.log_info.s3bucket``."""
    ERROR_CODE = "error-code"
    SOURCE_IP = "source-ip"
    AGENT = "agent"
    MITRE = "mitre"
    """MITRE ATT&CK technique ID; an alert with several counts once under each."""
    GROUP = "group"
    """Rule group; an alert with several counts once under each."""
    COUNTRY = "country"
    """Country of ``sourceIPAddress`` (offline GeoIP, ``manager/geo.country_of``): the
    database's country name, or ``(private)``, ``(service)``, ``(unknown)``. Stats only: no
    filter names it. Both backends count it from their source-IP counts (``rollup.DERIVED``)."""
    HOUR = "hour"
    DAY = "day"

    @property
    def is_time(self) -> bool:
        """True for the time buckets (``hour``, ``day``), which are not values of an alert."""
        return self in (StatsField.HOUR, StatsField.DAY)

    @property
    def multi_valued(self) -> bool:
        """True when one alert may carry several values (``mitre``, ``group``)."""
        return self in (StatsField.MITRE, StatsField.GROUP)


VALUE_FIELDS: tuple[StatsField, ...] = tuple(f for f in StatsField if not f.is_time)
"""The fields that are values of an alert: what stats group by and a series splits by."""


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a query, stats or series looks at (build it with ``store.query``).

    Every given filter must hold (AND). Empty strings, empty tuples and ``None`` mean "no
    filter". Values match exactly except ``search`` (a case-insensitive substring).
    """

    start: datetime | None = None
    """Inclusive lower bound (aware UTC) of the time ``time_basis`` names."""
    end: datetime | None = None
    """Exclusive upper bound (aware UTC)."""
    time_basis: TimeBasis = TimeBasis.EVENT
    rule_ids: tuple[str, ...] = ()
    """Any of these rule IDs."""
    min_level: int = 0
    """Only alerts at this level or above."""
    level: int | None = None
    """Only alerts at exactly this level."""
    agent_id: str = ""
    account: str = ""
    """AWS account the event happened in."""
    region: str = ""
    user: str = ""
    """Principal name as stored on the alert."""
    event_name: str = ""
    """CloudTrail eventName."""
    event_source: str = ""
    """CloudTrail eventSource (``iam.amazonaws.com``)."""
    source: str = ""
    """``aws.source`` (``cloudtrail``)."""
    bucket: str = ""
    """``aws.log_info.s3bucket``: the bucket the record was read from."""
    error_code: str = ""
    """CloudTrail errorCode (``AccessDenied``)."""
    source_ip: str = ""
    """CloudTrail sourceIPAddress."""
    group: str = ""
    """One of the rule's groups."""
    mitre: str = ""
    """One of the rule's MITRE ATT&CK technique IDs (``T1078``)."""
    search: str = ""
    """Case-insensitive substring of the full alert JSON (scans the rows the other filters keep)."""

    def active(self) -> frozenset[str]:
        """Names of the filters given besides the time range (``rule_ids``, ``level``, ...)."""
        names = [
            name
            for name in NARROWING_FILTERS
            if getattr(self, name) not in ("", (), None, 0) or (name == "level" and self.level == 0)
        ]
        return frozenset(names)

    @property
    def narrows(self) -> bool:
        """True when anything beyond the time range (and its basis) is filtered."""
        return bool(self.active())


NARROWING_FILTERS = (
    "rule_ids",
    "min_level",
    "level",
    "agent_id",
    "account",
    "region",
    "user",
    "event_name",
    "event_source",
    "source",
    "bucket",
    "error_code",
    "source_ip",
    "group",
    "mitre",
    "search",
)
"""The AlertFilter fields that narrow a query beyond its time range."""


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """A validated alert query: a filter and one page of the result, newest first."""

    filter: AlertFilter = AlertFilter()
    limit: int = DEFAULT_LIMIT
    """Alerts per page (1..MAX_LIMIT)."""
    page_token: str = ""
    """Opaque token from a previous ``AlertPage``; empty for the first page."""


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """A validated stats query: count the filtered alerts grouped by one field."""

    filter: AlertFilter = AlertFilter()
    by: StatsField = StatsField.RULE
    top: int = 0
    """Keep only the ``top`` largest groups (the rest is summed in ``StatsResult.other``);
    0 keeps every group. Time fields (hour, day) always keep every bucket."""


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """A validated time series: counts per time bucket, optionally split into groups."""

    filter: AlertFilter
    """Its ``start`` and ``end`` are always set (``store.query`` fills ``end`` with now)."""
    interval_seconds: int
    """Bucket width (60 .. 86400), chosen by ``store.query`` when the user said ``auto``."""
    split: StatsField | None = None
    """Split every bucket by this field's values (not hour/day); None: one total per bucket."""
    top: int = DEFAULT_SERIES_TOP
    """With ``split``: the ``top`` groups largest over the whole range; the rest is "other"."""


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
    source: str = ""
    """``aws.source``."""
    bucket: str = ""
    """``aws.log_info.s3bucket``."""
    error_code: str = ""
    """CloudTrail errorCode ('' when the call succeeded)."""


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page of a query, newest first."""

    alerts: list[StoredAlert]
    next_page_token: str = ""
    """Pass back as ``AlertQuery.page_token`` for the next page; empty when there is no more."""


@dataclass(frozen=True, slots=True)
class StatsBucket:
    key: str
    """The group's value (rule ID, level, account, ...); for hour/day the bucket's start as
    ``2026-11-26T15:00Z``."""
    label: str
    """Something readable beside the key (rule description, agent name); may be empty."""
    count: int


@dataclass(frozen=True, slots=True)
class StatsResult:
    by: StatsField
    buckets: list[StatsBucket]
    """Largest count first (ties by key); by hour or day, oldest first."""
    total: int
    """Alerts the filter keeps (each once, also when grouped by mitre or group)."""
    other: int = 0
    """What the groups cut off by ``top`` held together (for mitre/group: assignments)."""


OTHER_GROUP = "other"
"""Key of the series group that sums every value outside the top groups."""


@dataclass(frozen=True, slots=True)
class SeriesGroup:
    key: str
    """The split field's value; ``""`` for the unsplit total; ``OTHER_GROUP`` for the rest."""
    label: str
    """Readable name beside the key (rule description, agent name); may be empty."""
    counts: tuple[int, ...]
    """One count per bucket of ``SeriesResult.starts`` (empty buckets are 0)."""
    is_other: bool = False
    """True for the group summing every value outside the top groups."""

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class SeriesResult:
    interval_seconds: int
    starts: tuple[datetime, ...]
    """Every bucket's start (aware UTC), oldest first, empty ones included; the first bucket
    starts at or before the range's start (buckets are aligned to the interval)."""
    groups: list[SeriesGroup]
    """Largest first, "other" last; one group (key "") when the series is not split."""
    split: StatsField | None = None
    total: int = 0
    """Alerts in the range that the filter keeps."""


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
        alerts, only the cursor); ``0`` starts from the beginning, so with ``q.filter.start`` set it
        replays the alerts since then first. ``q.filter.end`` and ``q.page_token`` are
        ignored."""
        ...

    def ping(self) -> None:
        """StoreError unless the store can be reached now (a fresh connection answers)."""
        ...

    def follow_archive(
        self, after_cursor: int | None, limit: int
    ) -> tuple[list[ArchivedEvent], int]:
        """Archived events after ``after_cursor``, oldest first (at most ``limit``), and the
        cursor to pass next time; ``None`` returns none and the archive's current end. Feeds
        archives.json (``manager/outputs/archives.py``) as ``follow`` feeds the alert outputs."""
        ...

    def output_cursor(self, name: str) -> int | None:
        """The delivered-cursor of output ``name`` (the last alert it durably delivered), or
        None if it has none yet. Outputs read onward with ``follow`` (``manager/outputs``)."""
        ...

    def save_output_cursor(self, name: str, cursor: int) -> None:
        """Commit output ``name``'s delivered-cursor (after the output made its alerts durable)."""
        ...

    def counts(self) -> dict[str, int]:
        """Rows kept: ``alerts``, ``archive`` (raw events), ``seen_events`` (dedupe keys)."""
        ...

    def stats(self, q: StatsQuery) -> StatsResult:
        """Counts of the alerts ``q.filter`` keeps, grouped by ``q.by``."""
        ...

    def series(self, q: SeriesQuery) -> SeriesResult:
        """Counts of the alerts ``q.filter`` keeps per time bucket, split by ``q.split``."""
        ...

    def prune(self, now: datetime | None = None) -> PruneResult:
        """Apply the retention policy (age, then size cap)."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
