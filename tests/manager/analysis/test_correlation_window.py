"""A correlation window counts exactly what Wazuh's definition says, for every field shape.

``Window.count`` has one loop per shape (no ``different_field``, one, several) and ``key`` a
shortcut for one ``same_field``; each is checked here against the definition written out
plainly, over the same stored entries, for random events (fields missing or present, times
in and out of order, some exactly ``timeframe`` apart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.manager.analysis.helpers import AGENT, RULES, SOURCE, raw_of, record
from trailwarden.manager.analysis.correlate import Window
from trailwarden.manager.analysis.decode import decode_record
from trailwarden.manager.analysis.rules import load_ruleset
from trailwarden.manager.analysis.rules.matcher import EventView

_RULESET = load_ruleset([RULES / "correlation_shapes.xml"])
_SHAPES = ("100100", "100101", "100102")
T0 = datetime(2026, 11, 20, tzinfo=UTC)

_maybe = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
_events = st.lists(
    st.tuples(st.integers(-40, 40), _maybe, _maybe, _maybe, _maybe), min_size=1, max_size=30
)


def _view(seconds: int, user: Any, ip: Any, name: Any, bucket: Any) -> EventView:
    changes: dict[str, Any] = {"eventTime": (T0 + timedelta(seconds=seconds)).isoformat()}
    changes["userIdentity__userName"] = user
    changes["sourceIPAddress"] = ip
    changes["eventName"] = name
    changes["requestParameters"] = {"bucketName": bucket}
    rec = record(**changes)
    raw = raw_of(rec)
    return EventView(decode_record(rec, SOURCE, AGENT, raw=raw), raw, AGENT.id, decoded=True)


def _defined_key(window: Window, view: EventView) -> tuple[str | None, ...] | None:
    values = [view.value(path) for path in window.same_paths]
    return None if None in values else (AGENT.id, *values)


def _defined_count(window: Window, view: EventView, now: float) -> int:
    """Entries inside the timeframe (both ways) whose different fields all differ from the
    current event's (a field the current event lacks differs from anything)."""
    key = _defined_key(window, view)
    entries = window.entries.get(key, ()) if key is not None else ()
    current = [view.value(path) for path in window.different_paths]
    return sum(
        1
        for when, values in entries
        if abs(now - when) <= window.rule.timeframe
        and not any(
            mine is not None and mine == theirs
            for mine, theirs in zip(current, values, strict=True)
        )
    )


@given(_events)
@settings(max_examples=120, deadline=None)
def test_count_and_key_follow_the_definition_for_every_shape(
    events: list[tuple[int, Any, Any, Any, Any]],
) -> None:
    for rule_id in _SHAPES:
        window = Window(_RULESET.rules[rule_id], max_keys=100)
        for seconds, *fields in events:
            view = _view(seconds, *fields)
            now = (T0 + timedelta(seconds=seconds)).timestamp()
            assert window.key(view, AGENT.id) == _defined_key(window, view), rule_id
            assert window.count(view, AGENT.id, now) == _defined_count(window, view, now), rule_id
            window.add(view, AGENT.id, now)


def test_one_different_field_counts_only_other_values() -> None:
    window = Window(_RULESET.rules["100101"], max_keys=100)
    for seconds, name in ((0, "ListBuckets"), (1, "GetObject"), (2, "ListBuckets")):
        window.add(_view(seconds, "carol", "192.0.2.1", name, None), AGENT.id, T0.timestamp())
    now = T0.timestamp() + 30  # exactly timeframe away from the first three: still inside
    assert window.count(_view(30, "carol", "192.0.2.1", "ListBuckets", None), AGENT.id, now) == 1
    assert window.count(_view(30, "carol", "192.0.2.1", None, None), AGENT.id, now) == 3
    assert window.count(_view(30, "dave", "192.0.2.1", "PutObject", None), AGENT.id, now) == 0
    assert window.count(_view(31, "carol", "192.0.2.1", "PutObject", None), AGENT.id, now + 1) == 0
