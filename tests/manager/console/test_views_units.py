"""The console's own logic without a browser: GeoIP placement, URL → query translation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trailwarden.common.errors import QueryError
from trailwarden.manager.console.views.alerts import mitre_url
from trailwarden.manager.console.views.params import parse_console_query
from trailwarden.manager.geo import LOCATOR
from trailwarden.manager.store.query import build_alert_query

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("10.8.8.10", "private"),
        ("192.168.10.20", "private"),
        ("127.0.0.1", "private"),
        ("ec2.amazonaws.com", "service"),
        ("AWS Internal", "service"),
        ("", "unknown"),
        ("2001:4860:4860::8888", "unknown"),  # the shipped database is IPv4 only
    ],
)
def test_addresses_not_on_the_map_say_what_they_are(source: str, kind: str) -> None:
    place = LOCATOR.locate(source)
    assert place.kind == kind and place.map_name == ""


def test_a_public_address_is_placed_in_its_country_by_the_map_s_name() -> None:
    place = LOCATOR.locate("8.8.8.8")
    assert (place.kind, place.country_code, place.map_name) == ("public", "US", "United States")
    korea = LOCATOR.locate("1.214.0.1")  # the database says "South Korea", the map "Korea"
    assert korea.country_code == "KR" and korea.map_name == "Korea"


def test_url_filters_become_the_same_query_the_cli_builds() -> None:
    cq = parse_console_query(
        {
            "range": "custom",
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-11-02T00:00:00Z",
            "rule": ["80202", "80203"],
            "level": "5",
            "ip": "203.0.113.7",
            "service": "iam.amazonaws.com",
            "q": "AccessDenied",
        },
        now=NOW,
    )
    cli = build_alert_query(
        from_time="2026-11-01T00:00:00Z",
        to_time="2026-11-02T00:00:00Z",
        rule_ids=["80202,80203"],
        min_level=5,
        source_ip="203.0.113.7",
        event_source="iam.amazonaws.com",
        search="AccessDenied",
        now=NOW,
    )
    assert cq.alert_query() == cli
    assert cq.basis == "event" and cq.alert_query().filter.time_basis.value == "event"


def test_presets_are_absolute_ranges_ending_now() -> None:
    cq = parse_console_query({"range": "7d", "basis": "arrival"}, now=NOW)
    flt = cq.alert_query().filter
    assert flt.end == NOW and (NOW - flt.start).days == 7
    assert flt.time_basis.value == "arrival"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"colour": "red"}, "colour"),
        ({"range": "2w"}, "range"),
        ({"range": "custom"}, "from"),
        ({"from": "2026-11-01"}, "range=custom"),
        ({"basis": "wall-clock"}, "time basis"),
        ({"level": "high"}, "level"),
        ({"level": "17"}, "levels run 0..16"),
    ],
)
def test_bad_parameters_are_refused_naming_them(params: dict[str, str], words: str) -> None:
    with pytest.raises(QueryError, match=words):
        parse_console_query(params, now=NOW)


def test_mitre_links_only_for_technique_ids() -> None:
    assert mitre_url("T1552.005") == "https://attack.mitre.org/techniques/T1552/005/"
    assert mitre_url("t1078") == "https://attack.mitre.org/techniques/T1078/"
    assert mitre_url("javascript:alert(1)") == ""
    assert mitre_url("T10x") == ""
