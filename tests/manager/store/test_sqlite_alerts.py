"""The SQLite alert store on a real database file: filters, paging, follow, dedupe, archive."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trailwarden.common.errors import StoreError
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.query import build_alert_query, build_stats_query
from trailwarden.manager.store.sqlite.alerts import MIGRATIONS, SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

from .factory import BASE_TIME, event_for, make_alert

RULES = ("80202", "80203", "80250")
USERS = ("alice", "bob", "carol")
AGENTS = ("agent-1", "agent-2")
ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
NAMES = ("ConsoleLogin", "StopLogging", "CreateUser", "GetObject")


def corpus() -> list[Alert]:
    """60 alerts over 60 hours with every filterable field varying independently."""
    alerts = []
    for i in range(60):
        alerts.append(
            make_alert(
                when=BASE_TIME + timedelta(hours=i),
                rule_id=RULES[i % 3],
                level=3 + i % 10,
                user=USERS[i % 3 if i % 2 else (i // 2) % 3],
                agent_id=AGENTS[i % 2],
                agent_name=f"host-{AGENTS[i % 2]}",
                account=ACCOUNTS[(i // 3) % 2],
                region=REGIONS[(i // 5) % 3],
                event_name=NAMES[i % 4],
                extra_data={"requestParameters": {"bucketName": f"bucket-{i}"}},
            )
        )
    return alerts


@pytest.fixture
def loaded(store: SqliteAlertStore) -> tuple[SqliteAlertStore, list[Alert]]:
    alerts = corpus()
    assert store.commit([event_for(a) for a in alerts], alerts) == len(alerts)
    return store, alerts


def _ids(store: SqliteAlertStore, **kwargs: Any) -> list[str]:
    page = store.query(build_alert_query(limit=1000, **kwargs))
    assert page.next_page_token == ""
    return [a.id for a in page.alerts]


def _expected(alerts: list[Alert], keep: Callable[[Alert], bool]) -> list[str]:
    """IDs of the alerts ``keep`` accepts, newest first."""
    return [a.id for a in sorted(alerts, key=lambda a: a.timestamp, reverse=True) if keep(a)]


T0 = BASE_TIME + timedelta(hours=10)
T1 = BASE_TIME + timedelta(hours=40)

FILTERS: dict[str, tuple[dict[str, Any], Callable[[Alert], bool]]] = {
    "from/to": (  # by CloudTrail eventTime, the default basis
        {"from_time": T0.isoformat(), "to_time": T1.isoformat()},
        lambda a: T0 <= datetime.fromisoformat(a.event_time) < T1,
    ),
    "from only": (
        {"from_time": T1.isoformat()},
        lambda a: datetime.fromisoformat(a.event_time) >= T1,
    ),
    "rule": ({"rule_ids": ["80203"]}, lambda a: a.rule.id == "80203"),
    "two rules": (
        {"rule_ids": ["80202,80250"]},
        lambda a: a.rule.id in ("80202", "80250"),
    ),
    "min level": ({"min_level": 9}, lambda a: a.rule.level >= 9),
    "agent": ({"agent_id": "agent-2"}, lambda a: a.agent.id == "agent-2"),
    "account": ({"account": "222222222222"}, lambda a: a.account == "222222222222"),
    "region": ({"region": "eu-west-1"}, lambda a: a.region == "eu-west-1"),
    "user": ({"user": "bob"}, lambda a: a.user == "bob"),
    "event name": ({"event_name": "StopLogging"}, lambda a: a.event_name == "StopLogging"),
    "search": (
        {"search": "BUCKET-4"},  # case-insensitive substring of the alert JSON
        lambda a: a.data["aws"]["requestParameters"]["bucketName"].startswith("bucket-4"),
    ),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_filter_alone(loaded: tuple[SqliteAlertStore, list[Alert]], name: str) -> None:
    store, alerts = loaded
    kwargs, keep = FILTERS[name]
    expected = _expected(alerts, keep)
    assert 0 < len(expected) < len(alerts), "the corpus must make this filter discriminate"
    assert _ids(store, **kwargs) == expected


COMBINATIONS = [
    ("rule", "user"),
    ("rule", "from/to"),
    ("user", "from/to"),
    ("agent", "account", "min level"),
    ("region", "event name", "from only"),
    ("rule", "agent", "region", "user", "from/to"),
    ("search", "min level"),
]


@pytest.mark.parametrize("names", COMBINATIONS, ids="+".join)
def test_filters_combined(
    loaded: tuple[SqliteAlertStore, list[Alert]], names: tuple[str, ...]
) -> None:
    store, alerts = loaded
    kwargs: dict[str, Any] = {}
    for name in names:
        kwargs.update(FILTERS[name][0])
    expected = _expected(alerts, lambda a: all(FILTERS[n][1](a) for n in names))
    assert _ids(store, **kwargs) == expected


def test_since_is_relative_to_now(store: SqliteAlertStore) -> None:
    now = datetime.now(UTC)
    old = make_alert(when=now - timedelta(hours=30))
    new = make_alert(when=now - timedelta(hours=1))
    store.commit([event_for(old), event_for(new)], [old, new])
    assert _ids(store, since="24h") == [new.id]
    assert _ids(store, since="2d") == [new.id, old.id]


def test_paging_walks_every_alert_once_newest_first(
    loaded: tuple[SqliteAlertStore, list[Alert]],
) -> None:
    store, alerts = loaded
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = store.query(build_alert_query(limit=7, page_token=token, rule_ids=["80202"]))
        pages += 1
        seen.extend(a.id for a in page.alerts)
        token = page.next_page_token
        if not token:
            break
    assert seen == _expected(alerts, lambda a: a.rule.id == "80202")
    assert pages == 3  # 20 alerts in pages of 7


def test_paging_is_stable_while_new_alerts_arrive(
    loaded: tuple[SqliteAlertStore, list[Alert]],
) -> None:
    store, alerts = loaded
    first = store.query(build_alert_query(limit=10))
    newer = make_alert(when=BASE_TIME + timedelta(days=30))
    store.commit([event_for(newer)], [newer])
    second = store.query(build_alert_query(limit=10, page_token=first.next_page_token))
    everything = _expected(alerts, lambda a: True)
    assert [a.id for a in first.alerts + second.alerts] == everything[:20]


def test_stored_alert_carries_every_field_and_the_wazuh_json(store: SqliteAlertStore) -> None:
    alert = make_alert(mitre_ids=("T1078",), groups=("amazon", "authentication_success"))
    store.commit([event_for(alert)], [alert])
    (got,) = store.query(build_alert_query()).alerts
    assert (got.id, got.rule_id, got.level, got.description) == (
        alert.id,
        alert.rule.id,
        alert.rule.level,
        alert.rule.description,
    )
    assert got.timestamp == alert.timestamp and got.event_time == alert.event_time
    assert got.groups == ("amazon", "authentication_success") and got.mitre_ids == ("T1078",)
    assert (got.agent_id, got.agent_name, got.user, got.source_ip) == (
        "agent-1",
        "host-a",
        "alice",
        "198.51.100.7",
    )
    assert (got.event_id, got.recipient_account) == (alert.event_id, alert.recipient_account)
    assert json.loads(got.json) == alert.to_wazuh()


def test_resent_batch_creates_no_duplicates(store: SqliteAlertStore) -> None:
    alerts = [make_alert(), make_alert(rule_id="80203")]
    events = [event_for(a) for a in alerts]
    keys = [(e.event_key, e.recipient_account) for e in events]
    assert store.seen_events(keys) == set()
    assert store.commit(events, alerts) == 2
    assert store.seen_events(keys) == set(keys)
    # The agent resends after a lost ack; whatever ingest passes in, nothing doubles.
    assert store.commit(events, alerts) == 0
    assert len(store.query(build_alert_query()).alerts) == 2
    assert store.counts()["seen_events"] == 2


def test_same_event_id_in_another_account_is_a_different_event(store: SqliteAlertStore) -> None:
    a = make_alert(event_id="shared-id", recipient_account="111111111111")
    b = make_alert(event_id="shared-id", recipient_account="222222222222")
    assert store.commit([event_for(a)], [a]) == 1
    assert store.seen_events([("shared-id", "222222222222")]) == set()
    assert store.commit([event_for(b)], [b]) == 1
    # Two rules on the same event are two alerts; the same rule twice is one.
    c = make_alert(event_id="shared-id", recipient_account="222222222222", rule_id="80250")
    assert store.commit([], [c, b]) == 1


def test_seen_events_handles_many_keys(store: SqliteAlertStore) -> None:
    alerts = [make_alert() for _ in range(1200)]
    store.commit([event_for(a) for a in alerts[:700]], [])
    keys = [(a.event_id, a.recipient_account) for a in alerts]
    assert store.seen_events(keys) == set(keys[:700])


def test_events_without_alerts_are_remembered(store: SqliteAlertStore) -> None:
    quiet = make_alert()
    assert store.commit([event_for(quiet)], []) == 0
    assert store.seen_events([(quiet.event_id, quiet.recipient_account)]) == {
        (quiet.event_id, quiet.recipient_account)
    }
    assert store.counts() == {"alerts": 0, "archive": 0, "seen_events": 1}


def test_archive_keeps_every_raw_event_once_when_enabled(database: Database) -> None:
    store = SqliteAlertStore(database, archive=True)
    alert = make_alert()
    raws = [(make_alert(), b'{"eventID":"quiet-%d"}' % i) for i in range(3)]
    events = [event_for(alert, b'{"raw":1}')] + [event_for(a, raw) for a, raw in raws]
    store.commit(events, [alert])
    store.commit(events, [alert])
    rows = database.connection().execute("SELECT raw FROM archive ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == [b'{"raw":1}'] + [raw for _, raw in raws]


def test_schema_migrations_run_once_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "manager.db"
    db = Database(path)
    store = SqliteAlertStore(db)
    alert = make_alert()
    store.commit([event_for(alert)], [alert])
    db.close()
    db2 = Database(path)
    reopened = SqliteAlertStore(db2)
    assert [a.id for a in reopened.query(build_alert_query()).alerts] == [alert.id]
    versions = (
        db2.connection()
        .execute("SELECT version FROM schema_migrations WHERE component = 'alerts'")
        .fetchall()
    )
    assert [v[0] for v in versions] == list(range(1, len(MIGRATIONS) + 1))
    db2.close()


def test_database_errors_become_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "manager.db"
    db = Database(path)
    store = SqliteAlertStore(db)
    db.connection().execute("DROP TABLE alerts")
    with pytest.raises(StoreError, match="alert query failed"):
        store.query(build_alert_query())
    alert = make_alert()
    with pytest.raises(StoreError, match="no such table"):
        store.commit([event_for(alert)], [alert])
    # The failed commit rolled back as a whole: the event key was not remembered either.
    assert store.seen_events([(alert.event_id, alert.recipient_account)]) == set()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.seen_events([("a", "b")])
    db.close()


def test_newer_schema_than_known_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manager.db"
    db = Database(path)
    SqliteAlertStore(db)
    db.connection().execute(
        "INSERT INTO schema_migrations (component, version) VALUES ('alerts', 99)"
    )
    with pytest.raises(StoreError, match="newer than this TrailWarden knows"):
        SqliteAlertStore(db)
    db.close()
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0


def test_follow_returns_only_alerts_stored_after_it_starts(store: SqliteAlertStore) -> None:
    before = make_alert(rule_id="80202")
    store.commit([event_for(before)], [before])
    q = build_alert_query(rule_ids=["80202"])
    got, cursor = store.follow(q, None)
    assert got == []
    assert store.follow(q, cursor) == ([], cursor)
    later = [make_alert(rule_id="80202"), make_alert(rule_id="80203"), make_alert(rule_id="80202")]
    store.commit([event_for(a) for a in later], later)
    got, cursor2 = store.follow(q, cursor)
    assert [a.id for a in got] == [later[0].id, later[2].id]  # oldest first, filter applied
    assert cursor2 > cursor
    assert store.follow(q, cursor2) == ([], cursor2)


def test_follow_pages_through_a_burst(store: SqliteAlertStore) -> None:
    _, cursor = store.follow(build_alert_query(), None)
    burst = [make_alert() for _ in range(25)]
    store.commit([event_for(a) for a in burst], burst)
    q = build_alert_query(limit=10)
    received: list[str] = []
    for _ in range(5):
        got, cursor = store.follow(q, cursor)
        received.extend(a.id for a in got)
    assert received == [a.id for a in burst]


def test_stats_by_every_field(loaded: tuple[SqliteAlertStore, list[Alert]]) -> None:
    store, alerts = loaded
    by_rule = store.stats(build_stats_query(by="rule"))
    assert by_rule.total == 60
    assert {b.key: b.count for b in by_rule.buckets} == {"80202": 20, "80203": 20, "80250": 20}
    assert all(b.label == "AWS CloudTrail: ConsoleLogin" for b in by_rule.buckets)
    for by, attr in (
        ("level", lambda a: str(a.rule.level)),
        ("account", lambda a: a.account),
        ("user", lambda a: a.user),
        ("agent", lambda a: a.agent.id),
    ):
        result = store.stats(build_stats_query(by=by))
        expected: dict[str, int] = {}
        for a in alerts:
            expected[attr(a)] = expected.get(attr(a), 0) + 1
        assert {b.key: b.count for b in result.buckets} == expected, by
        counts = [b.count for b in result.buckets]
        assert counts == sorted(counts, reverse=True)
    agents = store.stats(build_stats_query(by="agent"))
    assert {b.label for b in agents.buckets} == {"host-agent-1", "host-agent-2"}
    hours = store.stats(
        build_stats_query(by="hour", from_time=T0.isoformat(), to_time=T1.isoformat())
    )
    assert hours.total == 30
    assert hours.buckets[0].key == "2026-11-20T22:00Z"
    assert [b.key for b in hours.buckets] == sorted(b.key for b in hours.buckets)


def test_follow_from_zero_replays_since_the_start_time(store: SqliteAlertStore) -> None:
    old = make_alert(when=BASE_TIME - timedelta(hours=3))
    recent = [make_alert(when=BASE_TIME - timedelta(minutes=m)) for m in (20, 10)]
    store.commit([event_for(a) for a in [old, *recent]], [old, *recent])
    q = build_alert_query(from_time=(BASE_TIME - timedelta(hours=1)).isoformat())
    got, cursor = store.follow(q, 0)
    assert [a.id for a in got] == [a.id for a in recent]
    newer = make_alert(when=BASE_TIME)
    store.commit([event_for(newer)], [newer])
    assert [a.id for a in store.follow(q, cursor)[0]] == [newer.id]


def test_readers_and_a_writer_on_other_threads(store: SqliteAlertStore) -> None:
    """Ingest commits on its thread while Admin queries run on others (WAL, one connection
    per thread): every query sees a consistent, growing set and nothing fails."""
    import threading

    batches = [[make_alert() for _ in range(20)] for _ in range(15)]
    errors: list[BaseException] = []
    seen_counts: dict[int, list[int]] = {0: [], 1: []}
    done = threading.Event()

    def write() -> None:
        try:
            for batch in batches:
                store.commit([event_for(a) for a in batch], batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read(reader: int) -> None:
        try:
            while True:
                finished = done.is_set()
                page = store.query(build_alert_query(limit=1000))
                assert len(page.alerts) % 20 == 0  # whole batches only: one transaction each
                seen_counts[reader].append(len(page.alerts))
                if finished:
                    break
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=read, args=(n,)) for n in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    for counts in seen_counts.values():
        assert counts == sorted(counts) and counts[-1] == 300  # each reader only sees more
    assert len(store.query(build_alert_query(limit=1000)).alerts) == 300


def test_busy_database_is_a_store_error_and_nothing_is_half_stored(
    store: SqliteAlertStore, database: Database
) -> None:
    """Another writer holds the lock past the busy timeout: commit raises StoreError (ingest
    then withholds the ack), and once the lock is gone the same commit succeeds in full."""
    alert = make_alert()
    store.seen_events([])  # open this thread's connection, then shorten its busy wait
    database.connection().execute("PRAGMA busy_timeout=50")
    blocker = sqlite3.connect(database.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="busy or unwritable"):
            store.commit([event_for(alert)], [alert])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.seen_events([(alert.event_id, alert.recipient_account)]) == set()
    assert store.commit([event_for(alert)], [alert]) == 1


@pytest.mark.parametrize("by", ["rule", "level", "account", "user", "agent"])
def test_stats_strategies_agree(
    loaded: tuple[SqliteAlertStore, list[Alert]], database: Database, by: str
) -> None:
    """The rollup counts (unfiltered) and the scan of the alerts count the same."""
    from trailwarden.manager.store.sqlite.stats import alert_stats

    conn = database.connection()
    for kwargs in ({}, {"from_time": T0.isoformat(), "to_time": T1.isoformat()}):
        q = build_stats_query(by=by, **kwargs)
        rolled = alert_stats(conn, q, use_rollup=True)
        scanned = alert_stats(conn, q, use_rollup=False)
        assert rolled == scanned
        assert rolled.total == (60 if not kwargs else 30)
    if by == "rule":  # the label is the newest alert's description
        newest = make_alert(
            rule_id="80202", description="AWS CloudTrail: renamed", when=T1 + timedelta(days=5)
        )
        store, _ = loaded
        store.commit([event_for(newest)], [newest])
        for use_rollup in (True, False):
            labels = {
                b.key: b.label
                for b in alert_stats(
                    conn, build_stats_query(by="rule"), use_rollup=use_rollup
                ).buckets
            }
            assert labels["80202"] == "AWS CloudTrail: renamed"
            assert labels["80203"] == "AWS CloudTrail: ConsoleLogin"
