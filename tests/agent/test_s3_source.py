"""The CloudTrail S3 source against a moto server on loopback (real HTTP, real boto3 stack)."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.sts.models import sts_backends

from tests.agent.helpers import drain, event_ids, records_of, run_pass, sources
from tests.fixtures.aws import (
    TEST_SECRET_KEY,
    AwsProfile,
    cloudtrail_key,
    make_record,
    put_cloudtrail_object,
)
from trailwarden.agent.collector import Collector
from trailwarden.agent.sources.aws import open_bucket
from trailwarden.agent.sources.s3 import GIVE_UP_AFTER
from trailwarden.agent.spool import Spool
from trailwarden.common.schema.sources import CloudTrailSourceConfig

DAY = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
A1, A2 = "111122223333", "444455556666"


def ct(bucket: str, profile: AwsProfile, **extra: Any) -> dict[str, Any]:
    """A cloudtrail source table reading ``bucket`` through the test profile."""
    table: dict[str, Any] = {
        "type": "cloudtrail",
        "bucket": bucket,
        "aws_profile": profile.name,
        "service_endpoint": profile.endpoint,
        "only_logs_after": "2026-01-01",
        "workers": 4,
    }
    table.update(extra)
    return table


def put(s3: Any, bucket: str, key: str, count: int = 2, **fields: Any) -> list[str]:
    records = [make_record(**fields) for _ in range(count)]
    put_cloudtrail_object(s3, bucket, key, records)
    return [r["eventID"] for r in records]


def test_discovers_every_account_and_region_and_skips_non_log_objects(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    expected: dict[str, tuple[str, str]] = {}
    for account in (A1, A2):
        for region in ("us-east-1", "eu-west-3"):
            for minute in (0, 5):
                key = cloudtrail_key(account, region, DAY + timedelta(minutes=minute))
                for event_id in put(s3, bucket, key):
                    expected[event_id] = (account, region)
        # Digests and other non-log objects are not read.
        s3.put_object(
            Bucket=bucket,
            Key=f"AWSLogs/{account}/CloudTrail-Digest/us-east-1/2026/11/01/x_Digest.json.gz",
            Body=b"{}",
        )
    s3.put_object(
        Bucket=bucket, Key="AWSLogs/111122223333/CloudTrail/us-east-1/readme.txt", Body=b"x"
    )
    s3.put_object(Bucket=bucket, Key="AWSLogs/ConfigWritabilityCheckFile", Body=b"")

    collector, result = run_pass(tmp_path, spool, ct(bucket, aws_profile))

    batches = drain(spool)
    assert result.ok and result.objects_done == 8
    assert sorted(event_ids(batches)) == sorted(expected)
    for batch in batches:
        for record in records_of([batch]):
            assert (batch.source.account_id, batch.source.region) == expected[record["eventID"]]
        assert batch.source.bucket == bucket and batch.source.key.endswith(".json.gz")
    status = collector.status()[0]
    assert status.objects_skipped == 1 and status.objects_failed == 0
    assert status.records_spooled == 16 and status.state == "idle"


def test_account_listing_goes_past_the_first_page(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile
) -> None:
    bucket = new_bucket()
    accounts = [f"{100000000000 + i}" for i in range(1003)]  # S3 pages hold 1000 prefixes
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda a: s3.put_object(Bucket=bucket, Key=f"AWSLogs/{a}/x", Body=b""), accounts
            )
        )
    config = sources(ct(bucket, aws_profile))[0]
    assert isinstance(config, CloudTrailSourceConfig)
    found = list(open_bucket(config).common_prefixes("AWSLogs/"))
    assert found == [f"AWSLogs/{a}/" for a in accounts]


def test_configured_accounts_and_regions_filter(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    wanted: list[str] = []
    for account in (A1, A2):
        for region in ("us-east-1", "eu-west-3"):
            ids = put(s3, bucket, cloudtrail_key(account, region, DAY))
            if account == A2 and region == "eu-west-3":
                wanted += ids
    _, result = run_pass(
        tmp_path, spool, ct(bucket, aws_profile, aws_account_ids=[A2], regions=["eu-west-3"])
    )
    assert result.objects_done == 1
    assert sorted(event_ids(drain(spool))) == sorted(wanted)


@pytest.mark.parametrize("configured", [True, False], ids=["configured", "discovered"])
def test_organization_trail_with_path_and_suffix(
    s3: Any,
    new_bucket: Any,
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
    configured: bool,
) -> None:
    bucket = new_bucket()
    org = "o-abc123defg"
    wanted: list[str] = []
    for account in (A1, A2):
        key = cloudtrail_key(
            account, "us-east-2", DAY, path="trails/prod/", path_suffix="org/", organization_id=org
        )
        wanted += put(s3, bucket, key)
    # Same accounts outside the configured path: not ours.
    put(s3, bucket, cloudtrail_key(A1, "us-east-2", DAY))
    extra: dict[str, Any] = {"path": "trails/prod", "path_suffix": "org/"}
    if configured:
        extra |= {"aws_organization_id": org, "aws_account_ids": [A1, A2]}
    _, result = run_pass(tmp_path, spool, ct(bucket, aws_profile, **extra))
    batches = drain(spool)
    assert result.ok
    assert sorted(event_ids(batches)) == sorted(wanted)
    assert {b.source.account_id for b in batches} == {A1, A2}


def test_only_logs_after_and_first_run_starts_today(
    s3: Any,
    new_bucket: Any,
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = new_bucket()
    today = datetime.now(UTC).replace(hour=0, minute=1)
    old = put(s3, bucket, cloudtrail_key(A1, "us-east-1", datetime(2026, 10, 30, tzinfo=UTC)))
    mid = put(s3, bucket, cloudtrail_key(A1, "us-east-1", datetime(2026, 11, 2, tzinfo=UTC)))
    new = put(s3, bucket, cloudtrail_key(A1, "us-east-1", today))

    with caplog.at_level(logging.INFO):
        first = ct(bucket, aws_profile, name="first-run")
        del first["only_logs_after"]
        run_pass(tmp_path, spool, first)
    assert sorted(event_ids(drain(spool))) == sorted(new)
    assert "first run without only_logs_after" in caplog.text

    other = Spool(tmp_path / "other.db", 1 << 20)
    run_pass(tmp_path, other, ct(bucket, aws_profile, only_logs_after="2026-NOV-01"))
    assert sorted(event_ids(drain(other))) == sorted(mid + new)
    other.close()
    assert old  # written but never read: before only_logs_after


def test_discard_rules_drop_matching_records(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    records = [
        make_record(eventName="DescribeInstances"),
        make_record(eventName="RunInstances"),
        make_record(eventName="GetObject", userIdentity={"type": "AWSService"}),
        make_record(eventName="PutObject", userIdentity={"type": "IAMUser"}),
    ]
    put_cloudtrail_object(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY), records)
    discard = [
        {"field": "eventName", "regex": "^Describe"},
        {"field": "userIdentity.type", "regex": "AWSService"},
    ]
    collector, _ = run_pass(tmp_path, spool, ct(bucket, aws_profile, discard=discard))
    kept = records_of(drain(spool))
    assert [r["eventName"] for r in kept] == ["RunInstances", "PutObject"]
    assert collector.status()[0].records_discarded == 2


def test_remove_from_bucket_deletes_spooled_objects(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    ids = put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY))
    ids += put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY + timedelta(minutes=5)))
    run_pass(tmp_path, spool, ct(bucket, aws_profile, remove_from_bucket=True))
    assert sorted(event_ids(drain(spool))) == sorted(ids)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_role_is_assumed_through_the_sts_endpoint_and_no_secret_is_logged(
    s3: Any,
    new_bucket: Any,
    aws_profile: AwsProfile,
    spool: Spool,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = new_bucket()
    ids = put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY))
    role = f"arn:aws:iam::210987654321:role/TrailReader-{bucket}"
    table = ct(
        bucket,
        aws_profile,
        iam_role_arn=role,
        iam_role_external_id="ext-42",
        iam_role_duration=3600,
        sts_endpoint=aws_profile.endpoint,
    )
    with caplog.at_level(logging.DEBUG):
        _, result = run_pass(tmp_path, spool, table)
    assert result.ok
    assert sorted(event_ids(drain(spool))) == sorted(ids)
    assumed = [r for r in sts_backends["210987654321"]["aws"].assumed_roles if r.role_arn == role]
    # Assumed once (the credentials are cached until close to expiry), as asked.
    assert len(assumed) == 1 and assumed[0].external_id == "ext-42"
    assert assumed[0].session_name == "trailwarden-agent"
    lifetime = assumed[0].expiration - datetime.now(UTC).replace(tzinfo=None)
    assert 3500 < lifetime.total_seconds() <= 3600
    # Even at DEBUG, neither the profile's secret nor the role's credentials reach the logs.
    assert "TrailReader" in caplog.text
    for secret in (TEST_SECRET_KEY, assumed[0].secret_access_key, assumed[0].session_token):
        assert secret not in caplog.text


def test_late_file_sorting_before_newest_key_is_collected_next_pass(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    first = put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY, unique="a"))
    first += put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY + timedelta(minutes=10)))
    collector = Collector(sources(ct(bucket, aws_profile)), spool, state_dir=tmp_path)
    collector.run_once()
    assert sorted(event_ids(drain(spool))) == sorted(first)

    late = put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY + timedelta(minutes=5)))
    late += put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY - timedelta(days=1)))
    result = collector.run_once()
    assert result.objects_done == 2
    assert sorted(event_ids(drain(spool))) == sorted(late)

    # A fresh collector on the same spool (a restart) takes nothing twice.
    again = Collector(sources(ct(bucket, aws_profile)), spool, state_dir=tmp_path).run_once()
    assert again.objects_done == 0 and drain(spool) == []


def test_corrupt_objects_are_reported_and_the_rest_delivered(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    good = put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY))
    good += put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY + timedelta(hours=1)))
    bad = {
        "truncated": gzip.compress(json.dumps({"Records": [make_record()]}).encode())[:-12],
        "notjson": gzip.compress(b"this is not json at all"),
        "shape": gzip.compress(b'{"Records": 5}'),
    }
    bad_keys = {}
    for minute, (what, body) in enumerate(bad.items(), start=1):
        key = cloudtrail_key(A1, "us-east-1", DAY + timedelta(minutes=minute), unique=what)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        bad_keys[what] = key
    collector, result = run_pass(tmp_path, spool, ct(bucket, aws_profile))
    assert result.ok and result.objects_failed == 3
    assert sorted(event_ids(drain(spool))) == sorted(good)
    status = collector.status()[0]
    reasons = {p.where: p.reason for p in status.problems}
    assert "truncated gzip" in reasons[f"{bucket}/{bad_keys['truncated']}"]
    assert "not JSON" in reasons[f"{bucket}/{bad_keys['notjson']}"]
    assert "not a list" in reasons[f"{bucket}/{bad_keys['shape']}"]
    # Recorded as failed: a later pass does not retry them.
    assert collector.run_once().objects_failed == 0


def test_error_without_skip_on_error_stops_the_source_and_is_retried(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    key = cloudtrail_key(A1, "us-east-1", DAY, unique="broken")
    s3.put_object(Bucket=bucket, Key=key, Body=b"\x1f\x8bnot really gzip")
    collector = Collector(
        sources(ct(bucket, aws_profile, skip_on_error=False, workers=1)),
        spool,
        state_dir=tmp_path,
    )
    result = collector.run_once()
    assert not result.ok and key in result.errors[0] and "corrupt gzip" in result.errors[0]
    assert collector.status()[0].state == "failed"
    ids = put(s3, bucket, key)  # the object is fixed; the next pass takes it
    assert collector.run_once().ok
    assert sorted(event_ids(drain(spool))) == sorted(ids)


def test_missing_bucket_and_unknown_profile_are_named(
    aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    _, result = run_pass(tmp_path, spool, ct("no-such-bucket-here", aws_profile))
    assert not result.ok
    assert "no-such-bucket-here" in result.errors[0] and "does not exist" in result.errors[0]
    _, result = run_pass(tmp_path, spool, ct("org-trail-b", aws_profile, aws_profile="nobody"))
    assert "profile 'nobody' not found" in result.errors[0]


def test_full_spool_pauses_fetching_and_resumes_after_acks(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, tmp_path: Path
) -> None:
    bucket = new_bucket()
    ids: list[str] = []
    for minute in range(12):
        ids += put(
            s3,
            bucket,
            cloudtrail_key(A1, "us-east-1", DAY + timedelta(minutes=minute)),
            count=10,
            padding="x" * 400,
        )
    limit = 12_000  # about two objects' worth
    spool = Spool(tmp_path / "small.db", limit, max_batch_records=4)
    collector = Collector(sources(ct(bucket, aws_profile)), spool, state_dir=tmp_path)
    done = threading.Event()
    threading.Thread(target=lambda: (collector.run_once(), done.set()), daemon=True).start()

    deadline = time.monotonic() + 30
    while not spool.stats().paused and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = spool.stats()
    assert stats.paused and stats.bytes <= limit
    assert collector.status()[0].state == "paused"
    time.sleep(0.5)
    assert not done.is_set() and spool.stats().bytes <= limit  # still waiting, nothing dropped

    received: list[str] = []
    while not done.is_set() or spool.stats().batches:
        assert time.monotonic() < deadline
        assert spool.stats().bytes <= limit
        batches = spool.pending(0, 2)
        received += event_ids(batches)
        spool.ack(b.sequence for b in batches)
        time.sleep(0.01)
    assert Counter(received) == Counter(ids)
    assert spool.stats().full_waits >= 1 and not spool.stats().paused
    spool.close()


def test_archived_object_is_retried_then_given_up_with_its_reason(
    s3: Any, new_bucket: Any, aws_profile: AwsProfile, spool: Spool, tmp_path: Path
) -> None:
    bucket = new_bucket()
    good = put(s3, bucket, cloudtrail_key(A1, "us-east-1", DAY))
    archived = cloudtrail_key(A1, "us-east-1", DAY + timedelta(minutes=5), unique="glacier")
    s3.put_object(
        Bucket=bucket,
        Key=archived,
        Body=gzip.compress(json.dumps({"Records": [make_record()]}).encode()),
        StorageClass="GLACIER",
    )
    collector = Collector(sources(ct(bucket, aws_profile)), spool, state_dir=tmp_path)
    failures = [collector.run_once().objects_failed for _ in range(GIVE_UP_AFTER + 1)]
    # Refused on every pass until given up; then never fetched again. The rest is delivered.
    assert failures == [1] * GIVE_UP_AFTER + [0]
    assert sorted(event_ids(drain(spool))) == sorted(good)
    problem = collector.status()[0].problems[0]
    assert problem.where == f"{bucket}/{archived}" and "archived" in problem.reason
