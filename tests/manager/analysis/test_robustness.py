"""Records of odd shape go through the whole Analyzer without crashing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.manager.analysis.helpers import AGENT, SOURCE, record
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset

# Module-level, not a fixture: hypothesis re-runs the body many times with one Analyzer.
ANALYZER = Analyzer(load_ruleset(default_ruleset_paths()), "m")

_scalar = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=15,
)
_fields = st.sampled_from(
    [
        "eventName",
        "eventSource",
        "eventTime",
        "errorCode",
        "userIdentity",
        "requestParameters",
        "responseElements",
        "additionalEventData",
        "sourceIPAddress",
        "recipientAccountId",
        "awsRegion",
        "eventID",
        "resources",
        "@timestamp",
    ]
)


@given(st.dictionaries(_fields, _value, max_size=8), st.booleans())
@settings(max_examples=200, deadline=None)
def test_any_object_is_analysed_without_error(fields: dict[str, Any], on_base: bool) -> None:
    analyzer = ANALYZER
    rec = record(**fields) if on_base else fields
    raw = json.dumps(rec).encode()
    outcome = analyzer.analyse(rec, raw, SOURCE, AGENT, trace=True)
    assert outcome.event["integration"] == "aws"
    assert outcome.rule is not None  # 80200 always matches a decoded event
    if outcome.alert is not None:
        json.dumps(outcome.alert.to_wazuh())
