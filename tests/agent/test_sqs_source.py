"""The SQS notification source against a moto server (S3, SQS, SNS): real S3 notification
configurations, delete only after the manager's acks, visibility extension, poison messages,
malformed bodies.

Here the spool is acknowledged by the test, as the manager's acks would (tests/agent/helpers
``drain``); the whole system with a real manager is in tests/integration/test_sqs_delivery.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.agent.helpers import drain, event_ids, sources
from tests.fixtures.aws import (
    AwsProfile,
    IamMotoServer,
    Queue,
    cloudtrail_key,
    create_queue,
    make_record,
    notify_queue,
    notify_topic,
    put_cloudtrail_object,
    queue_depth,
    sqs_source_table,
)
from trailwarden.agent.collector import Collector
from trailwarden.agent.spool import Spool
from trailwarden.agent.status import SqsStatus

WHEN = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def sqs_source(profile: AwsProfile, queue: Queue, **overrides: Any) -> dict[str, Any]:
    return sqs_source_table(
        profile, queue, **{"name": "notes", "visibility_timeout": "30s", "workers": 4, **overrides}
    )


def put_objects(
    s3: Any, bucket: str, count: int, per_object: int = 3
) -> tuple[list[str], set[str]]:
    keys: list[str] = []
    ids: set[str] = set()
    for _ in range(count):
        key = cloudtrail_key("111122223333", "us-east-1", WHEN)
        records = [make_record() for _ in range(per_object)]
        ids.update(r["eventID"] for r in records)
        put_cloudtrail_object(s3, bucket, key, records)
        keys.append(key)
    return keys, ids


def counters(collector: Collector) -> SqsStatus:
    status = collector.status()[0]
    assert status.sqs is not None
    return status.sqs


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_s3_notifications_deliver_every_record_once_and_delete_only_after_acks(
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
) -> None:
    bucket, queue = new_bucket(), new_queue()
    notify_queue(s3, bucket, queue)  # S3 sends its s3:TestEvent now
    _keys, expected = put_objects(s3, bucket, 5)
    digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/11/01/d.json.gz"
    s3.put_object(Bucket=bucket, Key=digest, Body=b"{}")
    s3.put_object(Bucket=bucket, Key="exports/report.csv", Body=b"a,b\n")
    collector = Collector(sources(sqs_source(aws_profile, queue)), spool, state_dir=tmp_path)

    result = collector.run_once()

    assert result.ok, result.errors
    assert result.objects_done == 5
    seen = counters(collector)
    assert seen.messages_received == 8  # test event + 5 logs + digest + csv
    assert seen.messages_ignored == 3
    assert seen.messages_held == 5
    assert collector.status()[0].objects_skipped == 3  # test event, digest, csv
    # The records are in the spool, not yet acknowledged: their messages are still there.
    wait_for(lambda: counters(collector).messages_deleted == 3, 5, "the ignored messages deleted")
    assert queue_depth(sqs, queue.url) == 5
    time.sleep(0.5)
    assert queue_depth(sqs, queue.url) == 5, "a message was deleted before its acks"

    batches = drain(spool)  # the manager acknowledges

    ids = event_ids(batches)
    assert Counter(ids) == Counter(expected)
    wait_for(lambda: collector.outstanding() == 0, 5, "deletes after the acks")
    assert queue_depth(sqs, queue.url) == 0
    assert counters(collector).messages_deleted == 8
    assert {b.source.bucket for b in batches} == {bucket}
    assert {b.source.account_id for b in batches} == {"111122223333"}


def test_sns_wrapped_and_cloudtrail_notifications(
    s3: Any,
    sqs: Any,
    sns: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
) -> None:
    bucket, other_bucket, queue = new_bucket(), new_bucket(), new_queue()
    topic = notify_topic(s3, sns, sqs, bucket, queue)
    _keys, expected = put_objects(s3, bucket, 3)
    # CloudTrail's own SNS notification names the keys it wrote (here in another bucket).
    ct_keys, ct_ids = put_objects(s3, other_bucket, 2)
    sns.publish(
        TopicArn=topic, Message=json.dumps({"s3Bucket": other_bucket, "s3ObjectKey": ct_keys})
    )
    collector = Collector(sources(sqs_source(aws_profile, queue)), spool, state_dir=tmp_path)

    result = collector.run_once()
    batches = drain(spool)

    assert result.ok, result.errors
    assert Counter(event_ids(batches)) == Counter(expected | ct_ids)
    wait_for(lambda: collector.outstanding() == 0, 5, "deletes after the acks")
    assert queue_depth(sqs, queue.url) == 0
    assert counters(collector).messages_received == 5  # test event, 3 objects, CloudTrail's


def test_queue_found_by_name_and_region(
    s3: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
) -> None:
    bucket, queue = new_bucket(), new_queue()
    notify_queue(s3, bucket, queue)
    _keys, expected = put_objects(s3, bucket, 2)
    table = sqs_source(aws_profile, queue, sqs_name=queue.url.rsplit("/", 1)[1], region="us-east-1")
    del table["queue_url"]
    collector = Collector(sources(table), spool, state_dir=tmp_path)

    assert collector.run_once().ok
    assert set(event_ids(drain(spool))) == expected


def test_malformed_bodies_are_reported_and_the_rest_delivered(
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
) -> None:
    bucket, queue = new_bucket(), new_queue()
    keys, expected = put_objects(s3, bucket, 2)
    bad_ids = [
        sqs.send_message(QueueUrl=queue.url, MessageBody=body)["MessageId"]
        for body in ("this is not json", json.dumps({"hello": "world"}))
    ]
    for key in keys:
        record = {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
        }
        sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps({"Records": [record]}))
    collector = Collector(sources(sqs_source(aws_profile, queue)), spool, state_dir=tmp_path)

    collector.run_once()
    batches = drain(spool)

    assert set(event_ids(batches)) == expected
    wait_for(lambda: collector.outstanding() == 0, 5, "deletes after the acks")
    seen = counters(collector)
    assert seen.messages_returned == 2
    assert seen.messages_deleted == 2
    problems = collector.status()[0].problems
    for message_id in bad_ids:
        matching = [p for p in problems if message_id in p.where]
        assert matching, f"no problem reported for message {message_id}: {problems}"
        assert "malformed notification" in matching[0].reason
        assert "receive 1 of 5" in matching[0].reason
    assert queue_depth(sqs, queue.url) == 2  # left to return (and, later, to the DLQ)


def test_failing_object_returns_then_is_poison_for_the_dead_letter_queue(
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
) -> None:
    bucket, queue = new_bucket(), new_queue(dead_letter_after=2)
    notify_queue(s3, bucket, queue)
    missing = cloudtrail_key("111122223333", "us-east-1", WHEN)
    put_cloudtrail_object(s3, bucket, missing, [make_record()])
    s3.delete_object(Bucket=bucket, Key=missing)  # notified, then gone
    table = sqs_source(aws_profile, queue, visibility_timeout="2s", max_receive_count=2)
    collector = Collector(sources(table), spool, state_dir=tmp_path)

    deadline = time.monotonic() + 20
    while queue_depth(sqs, queue.dlq_url) == 0 and time.monotonic() < deadline:
        collector.run_once()
        time.sleep(0.3)

    assert queue_depth(sqs, queue.dlq_url) == 1, "the message never reached the DLQ"
    seen = counters(collector)
    assert seen.messages_returned == 1
    assert seen.messages_poison == 1
    assert seen.messages_deleted == 1  # the test event only
    reasons = [p.reason for p in collector.status()[0].problems if missing in p.where]
    assert any("receive 1 of 2" in r and "no longer exists" in r for r in reasons), reasons
    assert any("poison message" in r and "received 2 times" in r for r in reasons), reasons
    assert queue_depth(sqs, queue.url) == 0
    assert drain(spool) == []


def test_visibility_is_extended_while_the_records_wait_for_acks(
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
) -> None:
    bucket, queue = new_bucket(), new_queue()
    notify_queue(s3, bucket, queue)
    _keys, expected = put_objects(s3, bucket, 3)
    table = sqs_source(aws_profile, queue, visibility_timeout="2s")
    collector = Collector(sources(table), spool, state_dir=tmp_path)
    collector.run_once()
    assert counters(collector).messages_held == 3

    # A slow manager: nothing acknowledged for three visibility timeouts. Another reader of
    # the queue must not get the messages meanwhile.
    stolen: list[str] = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        stolen += [m["MessageId"] for m in got.get("Messages", [])]
        time.sleep(0.2)

    assert stolen == []
    assert counters(collector).visibility_extensions >= 3 * 4  # 3 messages, every ~0.7 s
    assert set(event_ids(drain(spool))) == expected
    wait_for(lambda: collector.outstanding() == 0, 5, "deletes after the acks")
    assert queue_depth(sqs, queue.url) == 0


def test_an_ack_that_comes_before_the_source_watches_still_deletes(
    s3: Any,
    sqs: Any,
    new_bucket: Callable[[], str],
    new_queue: Callable[..., Queue],
    aws_profile: AwsProfile,
    tmp_path: Path,
) -> None:
    """The link may ack a batch before the committer has told the source its sequences."""
    bucket, queue = new_bucket(), new_queue()
    notify_queue(s3, bucket, queue)
    put_objects(s3, bucket, 4)
    spool = Spool(tmp_path / f"spool-{uuid.uuid4().hex}.db", 64 << 20)
    put = spool.put

    def put_and_ack_at_once(*args: Any, **kwargs: Any) -> list[int]:
        sequences = put(*args, **kwargs)
        spool.ack(sequences)  # before pipeline.commit hands them to the source
        return sequences

    spool.put = put_and_ack_at_once  # type: ignore[method-assign]
    try:
        collector = Collector(sources(sqs_source(aws_profile, queue)), spool, state_dir=tmp_path)
        assert collector.run_once().objects_done == 4
        wait_for(lambda: collector.outstanding() == 0, 5, "deletes after the early acks")
        assert queue_depth(sqs, queue.url) == 0
    finally:
        spool.close()


def test_access_denied_on_the_queue_or_an_object_names_it(
    moto_iam_server: IamMotoServer, tmp_path: Path
) -> None:
    s3, sqs = moto_iam_server.client("s3"), moto_iam_server.client("sqs")
    bucket = f"trail-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    queue = create_queue(sqs)
    notify_queue(s3, bucket, queue)
    key = cloudtrail_key("111122223333", "us-east-1", WHEN)
    put_cloudtrail_object(s3, bucket, key, [make_record()])
    queue_only = moto_iam_server.user(
        "queue-only", [{"Effect": "Allow", "Action": ["sqs:*"], "Resource": "*"}]
    )
    bucket_only = moto_iam_server.user(
        "bucket-only", [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]
    )
    looker = moto_iam_server.admin_client("sqs")
    moto_iam_server.enforce()
    endpoint = moto_iam_server.url
    profile = AwsProfile(bucket_only, Path(), Path(), endpoint)

    # No sqs:ReceiveMessage: the pass stops with an error naming the queue and the permission.
    spool = Spool(tmp_path / "spool-a.db", 64 << 20)
    try:
        denied = Collector(sources(sqs_source(profile, queue)), spool, state_dir=tmp_path)
        result = denied.run_once()
        assert not result.ok
        assert queue.url in result.errors[0]
        assert "access denied" in result.errors[0]
        assert "sqs:ReceiveMessage" in result.errors[0]
        assert queue.url in denied.status()[0].last_error
    finally:
        spool.close()

    # No s3:GetObject: the object is reported with bucket/key and its message returns.
    spool = Spool(tmp_path / "spool-b.db", 64 << 20)
    try:
        profile = AwsProfile(queue_only, Path(), Path(), endpoint)
        table = sqs_source(profile, queue, visibility_timeout="2s")
        collector = Collector(sources(table), spool, state_dir=tmp_path)
        result = collector.run_once()
        assert result.objects_failed == 1
        reasons = [p.reason for p in collector.status()[0].problems if key in p.where]
        assert any("access denied" in r and "s3:GetObject" in r for r in reasons), reasons
        assert any(f"s3://{bucket}/{key}" in p.where for p in collector.status()[0].problems)
        assert counters(collector).messages_returned == 1
        assert queue_depth(looker, queue.url) == 1
    finally:
        spool.close()
