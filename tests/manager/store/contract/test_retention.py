"""Retention on both backends: pruning by age, keeping forever, the size cap, the timer loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from trailwarden.manager.store.query import build_alert_query
from trailwarden.manager.store.retention import RetentionPolicy, retention_loop

from ..factory import BASE_TIME, event_for, make_alert
from .conftest import Backend


def test_prune_by_age_removes_old_alerts_archive_and_dedupe_keys(backend: Backend) -> None:
    store = backend.open(
        archive=True,
        retention=RetentionPolicy(alerts_days=30, archive_days=3, dedupe_days=5, max_db_bytes=0),
    )
    old = [make_alert(when=BASE_TIME - timedelta(days=40 + i)) for i in range(3)]
    recent = [make_alert(when=BASE_TIME - timedelta(days=1))]
    store.commit([event_for(a) for a in old + recent], old + recent)
    # Archive and dedupe ages count from arrival (now), so pretend time moves on 4 days.
    received = backend.sql("SELECT MAX(received_ms) FROM archive")[0][0]
    result = store.prune(now=BASE_TIME)
    assert result.alerts_by_age == 3
    assert [a.id for a in store.query(build_alert_query()).alerts] == [recent[0].id]
    assert result.archive_by_age == 0 and result.dedupe_by_age == 0  # arrived just now

    arrival = datetime.fromtimestamp(received / 1000, tz=UTC)
    later = store.prune(now=arrival + timedelta(days=4))
    assert later.archive_by_age == 4 and later.dedupe_by_age == 0
    latest = store.prune(now=arrival + timedelta(days=6))
    assert latest.dedupe_by_age == 4
    assert store.counts() == {"alerts": 1, "archive": 0, "seen_events": 0}
    # The alert still refuses a duplicate after its dedupe key is forgotten.
    assert store.commit([event_for(recent[0])], recent) == 0


def test_zero_days_keeps_forever(backend: Backend) -> None:
    store = backend.open(retention=RetentionPolicy(alerts_days=0, dedupe_days=0, max_db_bytes=0))
    ancient = make_alert(when=BASE_TIME - timedelta(days=3000))
    store.commit([event_for(ancient)], [ancient])
    assert store.prune(now=BASE_TIME).total == 0
    assert store.counts()["alerts"] == 1


def test_size_cap_removes_the_oldest_until_the_database_fits(backend: Backend) -> None:
    unbounded = backend.open(retention=RetentionPolicy(max_db_bytes=0))
    alerts = [
        make_alert(when=BASE_TIME + timedelta(minutes=i), extra_data={"pad": "x" * 2000})
        for i in range(600)
    ]
    for start in range(0, 600, 100):
        chunk = alerts[start : start + 100]
        unbounded.commit([event_for(a) for a in chunk], chunk)
    full = unbounded.bytes_in_use()
    cap = full // 2
    capped = backend.open(retention=RetentionPolicy(alerts_days=0, max_db_bytes=cap))
    result = capped.prune(now=BASE_TIME)
    assert result.alerts_by_size > 0
    assert result.bytes_in_use <= cap
    assert any("size cap" in note for note in result.notes)
    kept = [a.id for a in capped.query(build_alert_query(limit=1000)).alerts]
    # Newest first, and exactly the newest ones survived.
    assert kept == [a.id for a in reversed(alerts)][: len(kept)]
    assert 0 < len(kept) < 600
    # It stays within the cap as alerts keep arriving.
    more = [make_alert(extra_data={"pad": "y" * 2000}) for _ in range(50)]
    capped.commit([event_for(a) for a in more], more)
    capped.prune(now=BASE_TIME)
    assert capped.bytes_in_use() <= cap


def test_retention_loop_prunes_on_its_timer(backend: Backend) -> None:
    store = backend.open(retention=RetentionPolicy(alerts_days=1))
    old = make_alert(when=datetime.now(UTC) - timedelta(days=2))
    store.commit([event_for(old)], [old])

    async def run() -> None:
        task = asyncio.create_task(retention_loop(store, 0.05))
        for _ in range(100):
            if store.counts()["alerts"] == 0:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert store.counts()["alerts"] == 0
