"""The fast JSON paths of the worker: orjson parses and renders, with the standard library
taking over wherever orjson would read or write something different from what we promise."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailwarden.common.model import AgentRef
from trailwarden.manager.analysis.alert import Alert, RuleHit, render
from trailwarden.manager.pipeline.batch_analysis import DEEPER, parse_record

STRICT = json.JSONDecoder()


def strict(raw: bytes) -> Any:
    return STRICT.decode(raw.decode("utf-8"))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_parse_reads_what_the_standard_library_reads(value: Any) -> None:
    """Any JSON document (integers of any size included) parses to the same value, with the
    same types, as the standard library's parse (a float must not stand in for an int)."""
    raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        expected = strict(raw)
    except UnicodeDecodeError:
        return  # lone surrogates written raw are not UTF-8: not a record any agent sends
    parsed = parse_record(raw)
    assert parsed == expected
    assert json.dumps(parsed) == json.dumps(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Beyond 64 bits orjson returns a float; the strict path keeps the exact integer.
        (b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        (b'{"n": -9223372036854775809}', {"n": -9223372036854775809}),
        (b'{"n": 18446744073709551616}', {"n": 18446744073709551616}),
        # A long digit run inside a string only takes the slower path.
        (b'{"id": "12345678901234567890123"}', {"id": "12345678901234567890123"}),
        # orjson refuses these; the strict path reads them as we promise.
        (b'{"n": 1e400}', {"n": "1e400"}),
        (b'{"s": "a\\ud800b"}', {"s": "a\ufffd\ufffd\ufffdb"}),  # one per byte
        (b'{"s": "\\ud83d\\ude00"}', {"s": "\U0001f600"}),
    ],
)
def test_parse_edge_cases(raw: bytes, expected: Any) -> None:
    assert parse_record(raw) == expected


@pytest.mark.parametrize(
    "raw", [b'{"n": NaN}', b'{"n": Infinity}', b'{"n": -Infinity}', b'{"a": 1', b"\xff{}"]
)
def test_parse_refuses_what_is_not_strict_json(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_record(raw)


def test_parse_cuts_deep_nesting_on_both_paths() -> None:
    for filler in (b"", b',"n":12345678901234567890123'):
        raw = b'{"a":' + b"[" * 300 + b"1" + b"]" * 300 + filler + b"}"
        value = parse_record(raw)
        depth = 0
        node = value["a"]
        while isinstance(node, list):
            node, depth = node[0], depth + 1
        assert node == DEEPER
        assert depth < 300


def alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "id": "1700000000.7",
        "timestamp": "2026-11-26T10:00:00.000Z",
        "rule": RuleHit("80253", 12, "Root login", ("aws",), ("T1078",), 3, 0),
        "agent": AgentRef("001", "edge"),
        "manager_name": "m",
        "location": "bucket/key.json.gz",
        "data": {"aws": {"eventName": "ConsoleLogin", "n": 1.5}},
        "event_id": "e-1",
        "user": "root",
        "full_log": '{"eventName":"ConsoleLogin"}',
        "extra": {"note": "x"},
    }
    fields.update(changes)
    return Alert(**fields)


def test_alert_pickles_whole_before_and_after_rendering() -> None:
    fresh = alert()
    assert pickle.loads(pickle.dumps(fresh)) == fresh  # noqa: S301 - our own bytes
    document = fresh.document()
    back = pickle.loads(pickle.dumps(fresh))  # noqa: S301
    # Once rendered, the event travels only inside the document.
    assert back.data == {}
    assert back.document() == document
    assert (back.rule, back.agent, back.user, back.full_log) == (
        fresh.rule,
        fresh.agent,
        fresh.user,
        fresh.full_log,
    )


def test_render_matches_the_standard_library() -> None:
    document = alert(data={"aws": {"s": 'é\u2028"\\', "f": 0.1, "i": -3, "b": True}}).to_wazuh()
    assert json.loads(render(document)) == document


@pytest.mark.parametrize(
    "data",
    [
        {"big": 123456789012345678901234567890},  # beyond orjson's 64-bit integers
        {"deep": json.loads("[" * 300 + "]" * 300)},  # beyond orjson's nesting limit
    ],
)
def test_render_falls_back_for_what_orjson_refuses(data: dict[str, Any]) -> None:
    document = alert(data=data).to_wazuh()
    text = render(document)
    assert json.loads(text) == document
