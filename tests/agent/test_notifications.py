"""SQS message bodies: S3 events (direct and SNS-wrapped), EventBridge, CloudTrail's own SNS
notification, test events, keys that are not CloudTrail logs, and malformed bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trailwarden.agent.sources.notifications import LogObject, read_notification
from trailwarden.common.errors import ObjectError

KEY = (
    "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/01/"
    "111122223333_CloudTrail_eu-west-1_20261101T1000Z_abc.json.gz"
)
ORG_KEY = (
    "logs/AWSLogs/o-abc123defg/444455556666/CloudTrail/us-east-2/2026/11/01/"
    "444455556666_CloudTrail_us-east-2_20261101T1000Z_def.json.gz"
)
DIGEST = (
    "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/01/"
    "111122223333_CloudTrail-Digest_eu-west-1_x_20261101T1000Z.json.gz"
)


def s3_event(key: str, *, bucket: str = "trail", name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1234}},
    }


def sns_wrap(inner: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:eu-west-1:111122223333:trail",
            "Message": json.dumps(inner),
        }
    )


def test_s3_event_notification_names_the_log_object() -> None:
    got = read_notification(json.dumps({"Records": [s3_event(KEY)]}), "m")
    assert got.objects == (LogObject("trail", KEY, 1234, "111122223333", "eu-west-1"),)
    assert got.ignored == ()


def test_s3_keys_are_url_decoded() -> None:
    key = KEY.replace("abc", "a b+c")
    encoded = key.replace("+", "%2B").replace(" ", "+")
    got = read_notification(json.dumps({"Records": [s3_event(encoded)]}), "m")
    assert [o.key for o in got.objects] == [key]


def test_sns_wrapped_s3_event_and_organization_keys() -> None:
    body = sns_wrap({"Records": [s3_event(KEY), s3_event(ORG_KEY, bucket="org")]})
    got = read_notification(body, "m")
    assert [(o.bucket, o.account_id, o.region) for o in got.objects] == [
        ("trail", "111122223333", "eu-west-1"),
        ("org", "444455556666", "us-east-2"),
    ]


def test_eventbridge_object_created() -> None:
    body = {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "trail"}, "object": {"key": KEY, "size": 99}},
    }
    got = read_notification(json.dumps(body), "m")
    assert got.objects == (LogObject("trail", KEY, 99, "111122223333", "eu-west-1"),)
    deleted = read_notification(json.dumps({**body, "detail-type": "Object Deleted"}), "m")
    assert deleted.objects == () and "is not a creation" in deleted.ignored[0]


def test_cloudtrail_sns_notification_lists_keys() -> None:
    body = sns_wrap({"s3Bucket": "trail", "s3ObjectKey": [KEY, ORG_KEY]})
    got = read_notification(body, "m")
    assert [o.key for o in got.objects] == [KEY, ORG_KEY]
    assert all(o.size == 0 for o in got.objects)


def test_test_events_digests_and_removals_are_ignored_not_errors() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "trail"}
    assert read_notification(json.dumps(test_event), "m").test_event
    assert read_notification(sns_wrap(test_event), "m").objects == ()
    mixed = {
        "Records": [
            s3_event(KEY),
            s3_event(DIGEST),
            s3_event("other-app/data.csv"),
            s3_event(KEY, name="ObjectRemoved:Delete"),
        ]
    }
    got = read_notification(json.dumps(mixed), "m")
    assert [o.key for o in got.objects] == [KEY]
    assert len(got.ignored) == 3
    assert any("not a CloudTrail log file" in reason and DIGEST in reason for reason in got.ignored)
    assert any("ObjectRemoved:Delete" in reason for reason in got.ignored)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json {", "body is not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"hello": "world"}', "not an S3, EventBridge or CloudTrail notification"),
        ('{"Records": "x"}', "Records is not a list"),
        ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}', "bucket"),
        ('{"Records": [{"eventSource": "s3.amazonaws.com"}]}', "not an S3 event record"),
        ('{"Type": "Notification", "Message": 5}', "SNS envelope"),
        ('{"Type": "Notification", "Message": "{oops"}', "SNS Message"),
        ('{"s3Bucket": "trail", "s3ObjectKey": "one"}', "not a list of keys"),
    ],
)
def test_malformed_bodies_name_the_message(body: str, reason: str) -> None:
    with pytest.raises(ObjectError, match=reason) as caught:
        read_notification(body, "msg-42")
    assert "message msg-42" in str(caught.value)
