"""Query parsing: times, filters and tokens users give become validated queries or clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailwarden.common.errors import QueryError
from trailwarden.manager.store.base import DEFAULT_LIMIT, StatsField, TimeBasis
from trailwarden.manager.store.query import (
    alert_query_from_mapping,
    build_alert_query,
    build_series_query,
    build_stats_query,
    decode_page_token,
    encode_page_token,
    series_query_from_mapping,
    stats_query_from_mapping,
)

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def test_since_is_relative_to_now() -> None:
    q = build_alert_query(since="24h", now=NOW)
    assert q.filter.start == NOW - timedelta(hours=24)
    assert q.filter.end is None
    assert q.limit == DEFAULT_LIMIT


def test_from_to_accept_iso_and_wazuh_dates() -> None:
    q = build_alert_query(from_time="2026-NOV-01", to_time="2026-11-02T10:30:00Z")
    assert q.filter.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert q.filter.end == datetime(2026, 11, 2, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": "yesterday"}, "bad --since 'yesterday'"),
        ({"from_time": "2026-13-45"}, "bad --from time"),
        ({"to_time": "soon"}, "bad --to time"),
        ({"from_time": "2026-11-02", "to_time": "2026-11-01"}, "empty time range"),
        ({"since": "1h", "from_time": "2026-11-01"}, "either --since or --from"),
        ({"min_level": 17}, "bad --min-level 17"),
        ({"min_level": -1}, "bad --min-level -1"),
        ({"limit": 10_001}, "bad --limit"),
        ({"page_token": "not-a-token"}, "bad page token"),
    ],
)
def test_bad_input_is_a_clear_query_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(")):
        build_alert_query(**kwargs)  # type: ignore[arg-type]


def test_rules_split_on_commas_and_deduplicate() -> None:
    q = build_alert_query(rule_ids=["80202,80203", "80202", " 80250 "])
    assert q.filter.rule_ids == ("80202", "80203", "80250")


def test_unknown_field_in_a_query_mapping_is_named() -> None:
    with pytest.raises(QueryError, match=r"unknown field\(s\) 'colour'.*known fields: since"):
        alert_query_from_mapping({"since": "1h", "colour": "red"}, "AlertQuery")
    with pytest.raises(QueryError, match="'min_level' must be an integer"):
        alert_query_from_mapping({"min_level": "high"})


def test_query_mapping_builds_the_same_query_as_keywords() -> None:
    data = {"since": "2h", "rule_ids": ["80202"], "user": "alice", "limit": 5}
    q = alert_query_from_mapping(data)
    assert q.filter.rule_ids == ("80202",) and q.filter.user == "alice" and q.limit == 5
    assert q.filter.start is not None


def test_stats_by_field_and_unknown_field() -> None:
    assert build_stats_query().by is StatsField.RULE
    assert build_stats_query(by="HOUR").by is StatsField.HOUR
    with pytest.raises(QueryError, match=r"unknown field 'colour' for --by: use rule\|level"):
        build_stats_query(by="colour")
    with pytest.raises(QueryError, match="unknown field"):
        stats_query_from_mapping({"by": "rule", "colour": "x"})


def test_page_token_round_trips_and_rejects_tampering() -> None:
    token = encode_page_token(TimeBasis.EVENT, 1_795_176_780_000, 42)
    assert decode_page_token(token) == (TimeBasis.EVENT, 1_795_176_780_000, 42)
    with pytest.raises(QueryError):
        decode_page_token(token[:-3] + "!!!")
    with pytest.raises(QueryError):
        decode_page_token("")


@pytest.mark.parametrize(
    ("build", "kwargs", "message"),
    [
        (build_alert_query, {"level": 17}, r"bad --level 17: levels run 0\.\.16"),
        (build_alert_query, {"time_basis": "wallclock"}, "unknown time basis 'wallclock'"),
        (build_alert_query, {"account": "1" * 600}, "bad --account: 600 characters"),
        (build_alert_query, {"mitre": "T1\x00"}, "bad --mitre: contains a NUL"),
        (build_alert_query, {"from_time": "1969-12-31"}, "before 1970-01-01"),
        (build_alert_query, {"since": "99999999d"}, "bad --since|before 1970"),
        (build_stats_query, {"by": "colour"}, "unknown field 'colour' for --by"),
        (build_stats_query, {"top": -1}, "bad --top -1"),
        (build_stats_query, {"top": 10_001}, "bad --top 10001"),
        (build_series_query, {}, "a series needs a time range"),
        (build_series_query, {"since": "1d", "interval": "7m"}, "bad --interval '7m'"),
        (build_series_query, {"since": "1d", "interval": "often"}, "bad --interval 'often'"),
        (
            build_series_query,
            {"since": "30d", "interval": "1m"},
            "43200 buckets over this range, the most is 1500",
        ),
        (build_series_query, {"since": "1d", "split": "hour"}, "bad --split hour"),
        (
            build_series_query,
            {"since": "1d", "split": "colour"},
            "unknown field 'colour' for --split",
        ),
        (build_series_query, {"since": "1d", "top": 0}, r"bad --top 0: a split series shows"),
    ],
)
def test_bad_filters_and_series_name_the_field(
    build: Any, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        build(now=NOW, **kwargs)


def test_every_stats_field_parses_with_dashes_or_underscores() -> None:
    for field in StatsField:
        assert build_stats_query(by=field.value).by is field
        assert build_stats_query(by=field.value.replace("-", "_").upper()).by is field


def test_series_and_stats_mappings_take_every_filter() -> None:
    data = {
        "since": "7d",
        "time_basis": "arrival",
        "event_source": "iam.amazonaws.com",
        "bucket": "trail",
        "error_code": "AccessDenied",
        "source_ip": "198.51.100.7",
        "source": "cloudtrail",
        "group": "iam",
        "mitre": "T1098",
        "level": 0,
        "interval": "1h",
        "split": "rule",
        "top": 3,
    }
    q = series_query_from_mapping(data)
    assert q.filter.time_basis is TimeBasis.ARRIVAL and q.filter.level == 0
    assert (q.filter.event_source, q.filter.mitre, q.interval_seconds) == (
        "iam.amazonaws.com",
        "T1098",
        3600,
    )
    assert q.split is StatsField.RULE and q.top == 3 and q.filter.end is not None
    stats = stats_query_from_mapping({"by": "source-ip", "top": 5, "since": "1h"})
    assert stats.by is StatsField.SOURCE_IP and stats.top == 5
    with pytest.raises(QueryError, match=r"unknown field\(s\) 'interval'"):
        stats_query_from_mapping({"interval": "1h"})
    with pytest.raises(QueryError, match="'level' must be an integer"):
        alert_query_from_mapping({"level": "high"})


def test_page_token_of_one_basis_is_refused_for_the_other() -> None:
    token = encode_page_token(TimeBasis.ARRIVAL, 1_795_176_780_000, 42)
    assert build_alert_query(page_token=token, time_basis="arrival").page_token == token
    with pytest.raises(QueryError, match="continues a listing by arrival time"):
        build_alert_query(page_token=token)
