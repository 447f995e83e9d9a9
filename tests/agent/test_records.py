"""records.split: the agent's dict-free walk gives exactly what parse_object gives."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from trailwarden.agent.sources import records as records_module
from trailwarden.agent.sources.records import inflated_size, split
from trailwarden.common import logfile
from trailwarden.common.errors import ObjectError
from trailwarden.common.logfile import parse_object
from trailwarden.common.schema.filters import DiscardRule


def _record(n: int, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": f"id-{n}",
        "eventName": "GetObject" if n % 2 else "ListBuckets",
        "userIdentity": {"type": "IAMUser", "userName": f"user{n}"},
        "requestParameters": {"bucketName": "b", "n": n, "f": 1.5e3, "ok": True, "x": None},
    }
    out.update(fields)
    return out


RECORDS = [_record(n) for n in range(5)]

CASES: dict[str, bytes] = {
    "compact envelope": json.dumps({"Records": RECORDS}, separators=(",", ":")).encode(),
    "pretty envelope": json.dumps({"Records": RECORDS}, indent=2).encode(),
    "keys around Records": (
        b'{"a": [1, {"b": "}"}],\n "Records" : [ '
        + b" ,\n".join(json.dumps(r).encode() for r in RECORDS)
        + b' ] , "z": "]"}\n'
    ),
    "non-ASCII text": json.dumps(
        {"Records": [_record(1, userAgent="caf\u00e9 \u2603 \U0001f600"), _record(2)]},
        ensure_ascii=False,
    ).encode(),
    "escaped non-ASCII": json.dumps({"Records": [_record(1, userAgent="caf\u00e9")]}).encode(),
    "empty Records": b'{"Records": []}',
    "empty Records, spaces": b'{ "Records" : [ ] }',
    "a record that is not an object": json.dumps({"Records": [RECORDS[0], 7, RECORDS[1]]}).encode(),
    "NaN in a record": b'{"Records": [{"eventID": "n", "v": NaN}]}',
    "duplicate Records": b'{"Records": [{"eventID": "a"}], "Records": [{"eventID": "b"}]}',
    "trailing garbage": b'{"Records": [{"eventID": "a"}]} x',
    "truncated": json.dumps({"Records": RECORDS}).encode()[:-30],
    "Records not a list": b'{"Records": {"eventID": "a"}}',
    "no Records": b'{"Digest": 1}',
    "array": json.dumps(RECORDS).encode(),
    "JSON lines": b"\n".join(json.dumps(r).encode() for r in RECORDS) + b"\n",
    "one lone record": json.dumps(RECORDS[0]).encode(),
    "empty": b"  \n",
}


def _expected(data: bytes) -> tuple[list[bytes], list[str]] | str:
    try:
        parsed = parse_object(data, "s3://b/k")
    except ObjectError as exc:
        return exc.reason
    return [r.raw for r in parsed.records], parsed.problems


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", list(CASES))
def test_split_matches_parse_object(name: str, gzipped: bool) -> None:
    data = gzip.compress(CASES[name]) if gzipped else CASES[name]
    expected = _expected(data)
    if isinstance(expected, str):
        with pytest.raises(ObjectError) as caught:
            split(data, "s3://b/k")
        assert caught.value.reason == expected
        return
    out = split(data, "s3://b/k")
    assert (out.records, out.problems) == expected
    assert all(type(r) is bytes for r in out.records)
    assert out.discarded == 0
    assert out.payload == sum(map(len, out.records))


_ENVELOPE = CASES["compact envelope"]
GZIP_CASES: dict[str, bytes] = {
    "two gzip members": gzip.compress(b'{"Records": [') + gzip.compress(_ENVELOPE[13:]),
    "truncated gzip": gzip.compress(_ENVELOPE)[:-9],
    "corrupt gzip": gzip.compress(_ENVELOPE)[:40] + b"\x00" * 20 + gzip.compress(_ENVELOPE)[60:],
    "garbage after the member": gzip.compress(_ENVELOPE) + b"junk",
}


@pytest.mark.parametrize("name", list(GZIP_CASES))
def test_unusual_gzip_matches_parse_object(name: str) -> None:
    data = GZIP_CASES[name]
    expected = _expected(data)
    if isinstance(expected, str):
        with pytest.raises(ObjectError) as caught:
            split(data, "s3://b/k")
        assert caught.value.reason == expected
    else:
        out = split(data, "s3://b/k")
        assert (out.records, out.problems) == expected


def test_inflating_past_the_guard_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfile, "MAX_DECOMPRESSED_BYTES", 1000)
    with pytest.raises(ObjectError, match="gzip bomb"):
        split(gzip.compress(_ENVELOPE * 10), "s3://b/k")


def test_discard_rules_see_each_record_and_only_kept_bytes_remain() -> None:
    data = gzip.compress(CASES["pretty envelope"])
    rule = DiscardRule("eventName", "^ListBuckets$")
    out = split(data, "s3://b/k", (rule,))
    kept = [r for r in RECORDS if r["eventName"] != "ListBuckets"]
    assert [json.loads(r) for r in out.records] == kept
    assert out.discarded == len(RECORDS) - len(kept)
    # The same through the fallback path (a layout the fast walk leaves to parse_object).
    lines = split(CASES["JSON lines"], "k", (rule,))
    assert [json.loads(r) for r in lines.records] == kept
    assert lines.discarded == out.discarded


def test_a_record_past_the_link_limit_is_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = _record(9, padding="x" * 500)
    monkeypatch.setattr(records_module, "MAX_RECORD_BYTES", 400)
    for data in (json.dumps({"Records": [RECORDS[0], big]}).encode(), json.dumps([big]).encode()):
        out = split(data, "k")
        assert [json.loads(r)["eventID"] for r in out.records] == (
            ["id-0"] if data.startswith(b"{") else []
        )
        assert len(out.problems) == 1
        assert "more than the 400 a link message can carry" in out.problems[0]


def test_inflated_size_reads_the_gzip_trailer() -> None:
    text = CASES["compact envelope"] * 3
    assert inflated_size(gzip.compress(text)) == len(text)
    assert inflated_size(text) == len(text)
    assert inflated_size(b"") == 0


@pytest.mark.parametrize(
    "name",
    [
        "compact envelope",
        "pretty envelope",
        "keys around Records",
        "non-ASCII text",
        "escaped non-ASCII",
        "empty Records",
        "empty Records, spaces",
    ],
)
def test_cloudtrail_envelopes_take_the_dict_free_walk(name: str) -> None:
    # (Everything else goes to parse_object; the test above holds both to the same outcome.)
    assert records_module._split_envelope(CASES[name], ()) is not None
