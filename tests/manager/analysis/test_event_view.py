"""A decoded event starts with its hottest fields read; they equal what ``value()`` reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.manager.analysis.helpers import AGENT, SOURCE, raw_of, record
from trailwarden.manager.analysis.decode import decode_record
from trailwarden.manager.analysis.rules.matcher import EventView

HOT = ("aws.eventName", "aws.eventSource", "aws.errorCode", "aws.userIdentity.type")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"errorCode": "AccessDenied", "userIdentity__type": "Root"},
        {"eventName": 42, "errorCode": True, "userIdentity__type": ["AssumedRole"]},
        {"eventName": {"nested": "object"}, "eventSource": None, "userIdentity": "not-an-object"},
        {"userIdentity": {"arn": "arn:aws:iam::1:user/x"}, "userIdentity.type": "Dotted"},
        {"eventName": "ListBuckets", "userIdentity__type": "IAMUser", "errorCode": ["a", "b"]},
    ],
)
def test_hot_fields_read_at_start_equal_a_lazy_read(changes: dict[str, Any]) -> None:
    rec = record(**changes)
    raw = raw_of(rec)
    event = decode_record(rec, SOURCE, AGENT, raw=raw)
    started = EventView(event, raw, AGENT.id, decoded=True)
    lazy = EventView(event, raw, AGENT.id)
    assert "aws.eventName" in started._values  # really read at start, not left to value()
    for name in HOT:
        assert started.value(name) == lazy.value(name), name
        assert started.lowered(name) == lazy.lowered(name), name
