"""Decoding: the Wazuh envelope, its conventions, and odd records."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.manager.analysis.helpers import AGENT, SOURCE, event_file, record
from trailwarden.common.errors import DecodeError
from trailwarden.manager.analysis.decode import decode_record


def test_envelope_matches_wazuh_aws_integration() -> None:
    rec, _ = event_file("signin-console-login-failure.json")[0]
    event = decode_record(rec, SOURCE, AGENT)
    assert event["integration"] == "aws"
    aws = event["aws"]
    assert aws["source"] == "cloudtrail"
    assert aws["eventName"] == "ConsoleLogin"
    assert aws["responseElements"]["ConsoleLogin"] == "Failure"
    assert aws["userIdentity"]["userName"] == "Alice"
    assert aws["log_info"] == {
        "s3bucket": SOURCE.bucket,
        "log_file": SOURCE.key,
        "aws_account_alias": "prod",
    }
    assert aws["aws_account_id"] == "123456789012"
    assert event["agent"] == {"id": "001", "name": "aws-prod"}


def test_nulls_dropped_one_element_lists_flattened_scalars_wrapped() -> None:
    rec = record(
        requestParameters="i-0abc",
        responseElements=True,
        additionalEventData=None,
        resources=[{"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket", "accountId": None}],
        serviceEventDetails={"items": [{"a": 1}, {"b": None}], "one": [[None]]},
    )
    event = decode_record(rec, SOURCE, AGENT)
    aws = event["aws"]
    assert aws["requestParameters"] == {"string": "i-0abc"}
    assert aws["responseElements"] == {"string": True}
    assert "additionalEventData" not in aws
    assert aws["resources"] == {"ARN": "arn:aws:s3:::b", "type": "AWS::S3::Bucket"}
    assert aws["serviceEventDetails"] == {"items": [{"a": 1}, {}]}


def test_caller_record_is_not_mutated() -> None:
    rec = record(resources=[{"ARN": "x", "gone": None}], requestParameters={"a": None})
    before = copy.deepcopy(rec)
    decode_record(rec, SOURCE, AGENT)
    assert rec == before


def test_account_falls_back_to_the_key_layout() -> None:
    rec = record()
    del rec["recipientAccountId"]
    assert decode_record(rec, SOURCE, AGENT)["aws"]["aws_account_id"] == "123456789012"


@pytest.mark.parametrize("bad", [[1, 2], "text", 42, None])
def test_non_objects_raise_decode_error_naming_the_source(bad: object) -> None:
    with pytest.raises(DecodeError, match="example-trail-bucket/AWSLogs"):
        decode_record(bad, SOURCE, AGENT)  # type: ignore[arg-type]


def test_odd_but_object_records_decode() -> None:
    odd = {"eventName": ["a", "b"], "deep": {"x": [{"y": [{"z": None}]}]}, "n": 1.5}
    event = decode_record(odd, SOURCE, AGENT)
    assert event["aws"]["eventName"] == ["a", "b"]
    assert event["aws"]["deep"] == {"x": {"y": {}}}
    assert event["aws"]["n"] == 1.5
    deep: dict[str, object] = {}
    node = deep
    for _ in range(500):
        node["k"] = {}
        node = node["k"]  # type: ignore[assignment]
    assert decode_record({"d": deep}, SOURCE, AGENT)["integration"] == "aws"


def test_raw_shortcut_gives_the_same_event_on_every_dataset_record() -> None:
    from tests.fixtures.datasets import dataset_files
    from trailwarden.common.logfile import read_file

    files = dataset_files()
    checked = 0
    for path in files:
        for item in read_file(str(path)).records:
            fast = decode_record(item.record, SOURCE, AGENT, raw=item.raw)
            assert fast == decode_record(item.record, SOURCE, AGENT)
            checked += 1
    assert checked > 3000


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["a", "requestParameters", "responseElements", "n"]), _json, max_size=4
    )
)
@settings(max_examples=150, deadline=None)
def test_raw_shortcut_is_equivalent_on_any_object(rec: dict[str, object]) -> None:
    raw = json.dumps(rec).encode()
    assert decode_record(rec, SOURCE, AGENT, raw=raw) == decode_record(rec, SOURCE, AGENT)
