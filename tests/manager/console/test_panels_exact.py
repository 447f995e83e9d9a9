"""The two panels that group by source address give the raw alerts' own answer.

"Top source IPs" reads kept rollup sums (``store/sqlite/piece_cache``), the "Geolocation map"
the store's counts by country (the address rows mapped through ``geo.country_of``, which
remembers each address, and kept as per-country sums);
here they are compared with counts made in Python from the alerts themselves, each alert's
address looked up afresh, on a real store — before and after alerts arrive in hours the panels
have already summed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.manager.store.factory import event_for, make_alert
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.console.views import overview
from trailwarden.manager.console.views.params import parse_console_query
from trailwarden.manager.geo import LOCATOR
from trailwarden.manager.store.base import AlertStore
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

NOW = datetime.now(UTC).replace(microsecond=0)
FROM = NOW - timedelta(days=6, hours=3, minutes=11)
TO = NOW - timedelta(minutes=3)
ADDRESSES = (
    [f"8.8.{i}.{j}" for i in range(4) for j in range(9)]  # United States
    + ["1.214.0.1", "1.214.0.2"]  # Korea
    + ["81.2.69.160", "81.2.69.161"]  # United Kingdom
    + ["10.0.0.5", "192.168.1.9"]  # private
    + ["ec2.amazonaws.com", "AWS Internal"]  # service
    + ["2001:4860:4860::8888", ""]  # unknown
)


@dataclass
class _Context:
    store: AlertStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteAlertStore]:
    database = Database(tmp_path / "manager.db")
    s = SqliteAlertStore(database)
    yield s
    s.close()
    database.close()


def alerts(start: datetime, count: int, step_minutes: int, offset: int = 0) -> list[Alert]:
    # Skewed: address i is used about (i % 5 + 1) times as often, so the top 10 has ties.
    weighted = [a for i, a in enumerate(ADDRESSES) for _ in range(i % 5 + 1)]
    return [
        make_alert(
            when=start + timedelta(minutes=step_minutes * i),
            source_ip=weighted[(i * 7 + offset) % len(weighted)],
        )
        for i in range(count)
    ]


def in_range(stored: list[Alert]) -> list[Alert]:
    return [a for a in stored if FROM <= datetime.fromisoformat(a.event_time) < TO]


def panel(store: AlertStore, name: str) -> dict[str, Any]:
    cq = parse_console_query({"range": "custom", "from": FROM.isoformat(), "to": TO.isoformat()})
    return overview._compute(_Context(store), None, overview.BY_NAME[name], cq)  # type: ignore[arg-type]


def expected_top_ips(stored: list[Alert]) -> list[tuple[str, int]]:
    counts = Counter(a.source_ip for a in in_range(stored))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top = ranked[: overview.TOP_KEYS]
    rest = sum(n for _, n in ranked[overview.TOP_KEYS :])
    return top + ([(overview.OTHER, rest)] if rest else [])


def expected_map(stored: list[Alert]) -> tuple[dict[str, int], dict[str, int]]:
    countries: Counter[str] = Counter()
    not_placed: Counter[str] = Counter()
    for alert in in_range(stored):
        place = LOCATOR.locate(alert.source_ip)  # afresh, per alert
        if place.kind == "public":
            countries[place.map_name] += 1
        else:
            not_placed[place.kind] += 1
    return dict(countries), dict(not_placed)


def check(store: AlertStore, stored: list[Alert]) -> None:
    top = panel(store, "source-ips")
    assert [(b["key"], b["count"]) for b in top["buckets"]] == expected_top_ips(stored)
    assert top["total"] == len(in_range(stored))
    placed = panel(store, "geolocation")
    countries, not_placed = expected_map(stored)
    assert {c["name"]: c["count"] for c in placed["countries"]} == countries
    assert placed["not_placed"] == not_placed
    assert placed["total"] == len(in_range(stored))


def test_top_source_ips_and_the_map_are_the_raw_alerts_answer(store: SqliteAlertStore) -> None:
    stored = alerts(NOW - timedelta(days=8), 700, 17)
    assert store.commit([event_for(a) for a in stored], stored) == 700
    countries, _ = expected_map(stored)
    assert {"United States", "Korea", "United Kingdom"} <= set(countries)
    check(store, stored)
    check(store, stored)  # again, from the kept sums
    # Alerts arrive in hours already summed: a backfill mid-range and live ones at the end.
    late = alerts(NOW - timedelta(days=3, hours=2), 40, 5, offset=3) + alerts(
        NOW - timedelta(minutes=40), 6, 5, offset=1
    )
    assert store.commit([event_for(a) for a in late], late) == len(late)
    check(store, stored + late)
