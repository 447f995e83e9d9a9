"""The alert store contract, on SQLite and on PostgreSQL alike: filters, paging, follow, dedupe,
archive, migrations, errors (``alert_store`` runs every test once per backend)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailwarden.common.errors import StoreError
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.query import build_alert_query, build_stats_query

from ..factory import BASE_TIME, event_for, ids_of, make_alert
from .conftest import Backend

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
def loaded(alert_store: Any) -> tuple[Any, list[Alert]]:
    alerts = corpus()
    assert alert_store.commit([event_for(a) for a in alerts], alerts) == len(alerts)
    return alert_store, alerts


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
def test_each_filter_alone(loaded: tuple[Any, list[Alert]], name: str) -> None:
    alert_store, alerts = loaded
    kwargs, keep = FILTERS[name]
    expected = _expected(alerts, keep)
    assert 0 < len(expected) < len(alerts), "the corpus must make this filter discriminate"
    assert ids_of(alert_store, **kwargs) == expected


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
def test_filters_combined(loaded: tuple[Any, list[Alert]], names: tuple[str, ...]) -> None:
    alert_store, alerts = loaded
    kwargs: dict[str, Any] = {}
    for name in names:
        kwargs.update(FILTERS[name][0])
    expected = _expected(alerts, lambda a: all(FILTERS[n][1](a) for n in names))
    assert ids_of(alert_store, **kwargs) == expected


def test_since_is_relative_to_now(alert_store: Any) -> None:
    now = datetime.now(UTC)
    old = make_alert(when=now - timedelta(hours=30))
    new = make_alert(when=now - timedelta(hours=1))
    alert_store.commit([event_for(old), event_for(new)], [old, new])
    assert ids_of(alert_store, since="24h") == [new.id]
    assert ids_of(alert_store, since="2d") == [new.id, old.id]


def test_paging_walks_every_alert_once_newest_first(
    loaded: tuple[Any, list[Alert]],
) -> None:
    alert_store, alerts = loaded
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = alert_store.query(build_alert_query(limit=7, page_token=token, rule_ids=["80202"]))
        pages += 1
        seen.extend(a.id for a in page.alerts)
        token = page.next_page_token
        if not token:
            break
    assert seen == _expected(alerts, lambda a: a.rule.id == "80202")
    assert pages == 3  # 20 alerts in pages of 7


def test_paging_is_stable_while_new_alerts_arrive(
    loaded: tuple[Any, list[Alert]],
) -> None:
    alert_store, alerts = loaded
    first = alert_store.query(build_alert_query(limit=10))
    newer = make_alert(when=BASE_TIME + timedelta(days=30))
    alert_store.commit([event_for(newer)], [newer])
    second = alert_store.query(build_alert_query(limit=10, page_token=first.next_page_token))
    everything = _expected(alerts, lambda a: True)
    assert [a.id for a in first.alerts + second.alerts] == everything[:20]


def test_stored_alert_carries_every_field_and_the_wazuh_json(alert_store: Any) -> None:
    alert = make_alert(mitre_ids=("T1078",), groups=("amazon", "authentication_success"))
    alert_store.commit([event_for(alert)], [alert])
    (got,) = alert_store.query(build_alert_query()).alerts
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


def test_resent_batch_creates_no_duplicates(alert_store: Any) -> None:
    alerts = [make_alert(), make_alert(rule_id="80203")]
    events = [event_for(a) for a in alerts]
    keys = [(e.event_key, e.recipient_account) for e in events]
    assert alert_store.seen_events(keys) == set()
    assert alert_store.commit(events, alerts) == 2
    assert alert_store.seen_events(keys) == set(keys)
    # The agent resends after a lost ack; whatever ingest passes in, nothing doubles.
    assert alert_store.commit(events, alerts) == 0
    assert len(alert_store.query(build_alert_query()).alerts) == 2
    assert alert_store.counts()["seen_events"] == 2


def test_same_event_id_in_another_account_is_a_different_event(alert_store: Any) -> None:
    a = make_alert(event_id="shared-id", recipient_account="111111111111")
    b = make_alert(event_id="shared-id", recipient_account="222222222222")
    assert alert_store.commit([event_for(a)], [a]) == 1
    assert alert_store.seen_events([("shared-id", "222222222222")]) == set()
    assert alert_store.commit([event_for(b)], [b]) == 1
    # Two rules on the same event are two alerts; the same rule twice is one.
    c = make_alert(event_id="shared-id", recipient_account="222222222222", rule_id="80250")
    assert alert_store.commit([], [c, b]) == 1


def test_seen_events_handles_many_keys(alert_store: Any) -> None:
    alerts = [make_alert() for _ in range(1200)]
    alert_store.commit([event_for(a) for a in alerts[:700]], [])
    keys = [(a.event_id, a.recipient_account) for a in alerts]
    assert alert_store.seen_events(keys) == set(keys[:700])


def test_events_without_alerts_are_remembered(alert_store: Any) -> None:
    quiet = make_alert()
    assert alert_store.commit([event_for(quiet)], []) == 0
    assert alert_store.seen_events([(quiet.event_id, quiet.recipient_account)]) == {
        (quiet.event_id, quiet.recipient_account)
    }
    assert alert_store.counts() == {"alerts": 0, "archive": 0, "seen_events": 1}


def test_archive_keeps_every_raw_event_once_when_enabled(backend: Backend) -> None:
    alert_store = backend.open(archive=True)
    alert = make_alert()
    raws = [(make_alert(), b'{"eventID":"quiet-%d"}' % i) for i in range(3)]
    events = [event_for(alert, b'{"raw":1}')] + [event_for(a, raw) for a, raw in raws]
    alert_store.commit(events, [alert])
    alert_store.commit(events, [alert])
    rows = backend.sql("SELECT raw FROM archive ORDER BY seq")
    assert [bytes(r[0]) for r in rows] == [b'{"raw":1}'] + [raw for _, raw in raws]
    assert alert_store.counts() == {"alerts": 1, "archive": 4, "seen_events": 4}


def test_follow_archive_pages_every_archived_event_once_in_order(backend: Backend) -> None:
    alert_store = backend.open(archive=True)
    assert alert_store.follow_archive(None, 10) == ([], 0)
    raws = [b'{"eventID":"archived-%d"}' % i for i in range(5)]
    alert_store.commit([event_for(make_alert(), raw) for raw in raws], [])
    first, cursor = alert_store.follow_archive(0, 3)
    rest, end = alert_store.follow_archive(cursor, 3)
    assert [e.raw for e in first + rest] == raws
    assert [e.cursor for e in first + rest] == sorted({e.cursor for e in first + rest})
    assert alert_store.follow_archive(end, 3) == ([], end)
    assert first[0].agent_id and first[0].timestamp.endswith("Z")


def _versions(backend: Backend) -> list[int]:
    table = "schema_migrations" if backend.name == "sqlite" else "schema_version"
    rows = backend.sql(f"SELECT version FROM {table} WHERE component = 'alerts' ORDER BY version")
    return [int(r[0]) for r in rows]


def test_schema_migrations_run_once_and_survive_reopening(backend: Backend) -> None:
    """Started on an empty database, then again on one at the current version."""
    first = backend.open()
    versions = _versions(backend)
    assert versions and versions == list(range(1, len(versions) + 1))
    alert = make_alert()
    first.commit([event_for(alert)], [alert])
    first.close()
    reopened = backend.open()
    assert [a.id for a in reopened.query(build_alert_query()).alerts] == [alert.id]
    assert _versions(backend) == versions
    assert reopened.commit([event_for(alert)], [alert]) == 0  # dedupe kept across the restart


def test_database_errors_become_store_errors(backend: Backend) -> None:
    alert_store = backend.open()
    backend.sql("DROP TABLE alerts")
    with pytest.raises(StoreError, match="alert query failed"):
        alert_store.query(build_alert_query())
    alert = make_alert()
    with pytest.raises(StoreError, match="alerts"):
        alert_store.commit([event_for(alert)], [alert])
    # The failed commit rolled back as a whole: the event key was not remembered either.
    assert alert_store.seen_events([(alert.event_id, alert.recipient_account)]) == set()
    with pytest.raises(StoreError):
        alert_store.ping()
    alert_store.close()
    with pytest.raises(StoreError, match="closed"):
        alert_store.seen_events([("a", "b")])


def test_newer_schema_than_known_is_refused(backend: Backend) -> None:
    backend.open().close()
    table = "schema_migrations" if backend.name == "sqlite" else "schema_version"
    backend.sql(f"INSERT INTO {table} (component, version) VALUES ('alerts', 99)")
    with pytest.raises(StoreError, match="newer than this TrailWarden knows"):
        backend.open()
    assert backend.sql("SELECT COUNT(*) FROM alerts")[0][0] == 0


def test_ping_answers_on_a_reachable_store(alert_store: Any) -> None:
    alert_store.ping()


def test_output_cursors_start_empty_and_move(alert_store: Any) -> None:
    assert alert_store.output_cursor("alerts-file") is None
    alert_store.save_output_cursor("alerts-file", 7)
    alert_store.save_output_cursor("alerts-file", 9)
    alert_store.save_output_cursor("webhook", 3)
    assert (alert_store.output_cursor("alerts-file"), alert_store.output_cursor("webhook")) == (
        9,
        3,
    )


def test_follow_returns_only_alerts_stored_after_it_starts(alert_store: Any) -> None:
    before = make_alert(rule_id="80202")
    alert_store.commit([event_for(before)], [before])
    q = build_alert_query(rule_ids=["80202"])
    got, cursor = alert_store.follow(q, None)
    assert got == []
    assert alert_store.follow(q, cursor) == ([], cursor)
    later = [make_alert(rule_id="80202"), make_alert(rule_id="80203"), make_alert(rule_id="80202")]
    alert_store.commit([event_for(a) for a in later], later)
    got, cursor2 = alert_store.follow(q, cursor)
    assert [a.id for a in got] == [later[0].id, later[2].id]  # oldest first, filter applied
    assert cursor2 > cursor
    assert alert_store.follow(q, cursor2) == ([], cursor2)


def test_follow_pages_through_a_burst(alert_store: Any) -> None:
    _, cursor = alert_store.follow(build_alert_query(), None)
    burst = [make_alert() for _ in range(25)]
    alert_store.commit([event_for(a) for a in burst], burst)
    q = build_alert_query(limit=10)
    received: list[str] = []
    for _ in range(5):
        got, cursor = alert_store.follow(q, cursor)
        received.extend(a.id for a in got)
    assert received == [a.id for a in burst]


def test_stats_by_every_field(loaded: tuple[Any, list[Alert]]) -> None:
    alert_store, alerts = loaded
    by_rule = alert_store.stats(build_stats_query(by="rule"))
    assert by_rule.total == 60
    assert {b.key: b.count for b in by_rule.buckets} == {"80202": 20, "80203": 20, "80250": 20}
    assert all(b.label == "AWS CloudTrail: ConsoleLogin" for b in by_rule.buckets)
    for by, attr in (
        ("level", lambda a: str(a.rule.level)),
        ("account", lambda a: a.account),
        ("user", lambda a: a.user),
        ("agent", lambda a: a.agent.id),
    ):
        result = alert_store.stats(build_stats_query(by=by))
        expected: dict[str, int] = {}
        for a in alerts:
            expected[attr(a)] = expected.get(attr(a), 0) + 1
        assert {b.key: b.count for b in result.buckets} == expected, by
        counts = [b.count for b in result.buckets]
        assert counts == sorted(counts, reverse=True)
    agents = alert_store.stats(build_stats_query(by="agent"))
    assert {b.label for b in agents.buckets} == {"host-agent-1", "host-agent-2"}
    hours = alert_store.stats(
        build_stats_query(by="hour", from_time=T0.isoformat(), to_time=T1.isoformat())
    )
    assert hours.total == 30
    assert hours.buckets[0].key == "2026-11-20T22:00Z"
    assert [b.key for b in hours.buckets] == sorted(b.key for b in hours.buckets)


def test_follow_from_zero_replays_since_the_start_time(alert_store: Any) -> None:
    old = make_alert(when=BASE_TIME - timedelta(hours=3))
    recent = [make_alert(when=BASE_TIME - timedelta(minutes=m)) for m in (20, 10)]
    alert_store.commit([event_for(a) for a in [old, *recent]], [old, *recent])
    q = build_alert_query(from_time=(BASE_TIME - timedelta(hours=1)).isoformat())
    got, cursor = alert_store.follow(q, 0)
    assert [a.id for a in got] == [a.id for a in recent]
    newer = make_alert(when=BASE_TIME)
    alert_store.commit([event_for(newer)], [newer])
    assert [a.id for a in alert_store.follow(q, cursor)[0]] == [newer.id]


def test_readers_and_a_writer_on_other_threads(alert_store: Any) -> None:
    """Ingest commits on its thread while Admin queries run on others (WAL, one connection
    per thread): every query sees a consistent, growing set and nothing fails."""
    batches = [[make_alert() for _ in range(20)] for _ in range(15)]
    errors: list[BaseException] = []
    seen_counts: dict[int, list[int]] = {0: [], 1: []}
    done = threading.Event()

    def write() -> None:
        try:
            for batch in batches:
                alert_store.commit([event_for(a) for a in batch], batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read(reader: int) -> None:
        try:
            while True:
                finished = done.is_set()
                page = alert_store.query(build_alert_query(limit=1000))
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
    assert len(alert_store.query(build_alert_query(limit=1000)).alerts) == 300


def test_a_follower_misses_nothing_while_two_stores_commit_at_once(backend: Backend) -> None:
    """Two stores on one database (two managers, or two ingest threads) commit batches at the
    same time while a follower reads: it receives every alert exactly once. On PostgreSQL the
    cursor values are handed out before commit, so without commits in cursor order a follower
    could move past a slower writer's alerts for good."""
    writers = [backend.open(), backend.open()]
    follower = backend.open()
    q = build_alert_query(limit=50)
    _, cursor = follower.follow(q, None)
    batches = [[[make_alert() for _ in range(10)] for _ in range(12)] for _ in writers]
    errors: list[BaseException] = []

    def write(store: Any, mine: list[list[Alert]]) -> None:
        try:
            for batch in mine:
                store.commit([event_for(a) for a in batch], batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(store, mine))
        for store, mine in zip(writers, batches, strict=True)
    ]
    for t in threads:
        t.start()
    received: list[str] = []
    while any(t.is_alive() for t in threads):
        got, cursor = follower.follow(q, cursor)
        received.extend(a.id for a in got)
    for t in threads:
        t.join(30)
    while True:
        got, cursor = follower.follow(q, cursor)
        if not got:
            break
        received.extend(a.id for a in got)
    assert errors == []
    expected = {a.id for mine in batches for batch in mine for a in batch}
    assert len(received) == len(set(received)) == len(expected)
    assert set(received) == expected
