"""The CloudTrail generator: determinism, record shapes, scenarios, key layout, S3 output."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.aws import AwsProfile, s3_client
from trailwarden.common.generator import (
    DOCUMENTED_RULES,
    REQUIRED_FIELDS,
    SCENARIOS,
    expected_rules,
    generate_records,
    plan_objects,
    resolve,
    write_objects,
)
from trailwarden.common.generator.cli import main
from trailwarden.common.logfile import parse_object

START = datetime(2026, 11, 20, tzinfo=UTC)
ACCOUNTS = ["111111111111", "222222222222"]
REGIONS = ["us-east-1", "eu-west-1"]
KEY = re.compile(
    r"^(?:(?P<prefix>.+)/)?AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail/"
    r"(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P<stamp>\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$"
)


def trail(events: int = 400, seed: int = 7, scenarios: str = "all") -> list[dict]:
    return generate_records(ACCOUNTS, REGIONS, events, scenarios, seed, START)


def event_time(record: dict) -> datetime:
    return datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_same_seed_same_trail_other_seed_other_trail() -> None:
    first, again, other = trail(seed=7), trail(seed=7), trail(seed=8)
    assert json.dumps(first) == json.dumps(again)
    assert {r["eventID"] for r in first}.isdisjoint({r["eventID"] for r in other})
    keys = [o.key for o in plan_objects(first, seed=7)]
    assert keys == [o.key for o in plan_objects(again, seed=7)]


def test_every_record_has_cloudtrail_fields_and_unique_uuid_event_ids() -> None:
    records = trail(events=600)
    assert len(records) == 600
    for record in records:
        missing = [name for name in REQUIRED_FIELDS if name not in record]
        assert not missing, (missing, record)
        assert record["eventVersion"] in ("1.08", "1.09")
        assert uuid.UUID(record["eventID"]).version == 4
        assert record["recipientAccountId"] in ACCOUNTS
        assert record["awsRegion"] in REGIONS
        assert START <= event_time(record) < START + timedelta(hours=1, minutes=5)
        assert record["eventCategory"] in ("Management", "Data")
        assert record["managementEvent"] is (record["eventCategory"] == "Management")
        if record["userIdentity"]["type"] != "AWSService":
            assert record["tlsDetails"]["tlsVersion"].startswith("TLSv1.")
    assert len({r["eventID"] for r in records}) == len(records)
    assert [r["eventTime"] for r in records] == sorted(r["eventTime"] for r in records)
    types = Counter(r["userIdentity"]["type"] for r in records)
    assert {"IAMUser", "AssumedRole", "Root", "AWSService"} <= set(types)
    assert any(r.get("sessionCredentialFromConsole") == "true" for r in records)
    # Both accounts and both regions carry scenario records, not just noise.
    scenario_only = trail(events=0)
    assert {r["recipientAccountId"] for r in scenario_only} == set(ACCOUNTS)
    assert {r["awsRegion"] for r in scenario_only} == set(REGIONS)


def test_scenarios_do_not_change_with_the_amount_of_noise() -> None:
    bare = trail(events=0)
    busy = trail(events=2000)
    assert len(busy) == 2000
    busy_ids = {r["eventID"] for r in busy}
    assert {r["eventID"] for r in bare} <= busy_ids
    noise = [r for r in busy if r["eventID"] not in {b["eventID"] for b in bare}]
    assert all(r["readOnly"] is True and "errorCode" not in r for r in noise)


def by_name(records: list[dict], name: str) -> list[dict]:
    return [r for r in records if r["eventName"] == name]


def test_documented_scenarios_have_wazuh_page_shapes() -> None:
    records = trail(events=0, scenarios="all")
    for action in (
        "RunInstances",
        "StartInstances",
        "StopInstances",
        "CreateSecurityGroup",
        "AllocateAddress",
        "AssociateAddress",
    ):
        calls = by_name(records, action)
        ok = [r for r in calls if "errorCode" not in r]
        refused = [r for r in calls if r.get("errorCode") == "Client.UnauthorizedOperation"]
        assert len(ok) == 1 and len(refused) == 1, action
        assert ok[0]["eventSource"] == "ec2.amazonaws.com"
        assert ok[0]["responseElements"] is not None
        assert refused[0]["responseElements"] is None
        assert f"ec2:{action}" in refused[0]["errorMessage"]
    run = by_name(records, "RunInstances")[0]
    assert run["responseElements"]["instancesSet"]["items"][0]["instanceId"].startswith("i-0")
    created = by_name(records, "CreateUser")
    assert sorted(r.get("errorCode", "") for r in created) == ["", "AccessDenied"]
    assert all(r["awsRegion"] == "us-east-1" for r in created)  # IAM is global

    logins = by_name(records, "ConsoleLogin")
    failures = [r for r in logins if r["responseElements"] == {"ConsoleLogin": "Failure"}]
    assert all(r["errorMessage"] == "Failed authentication" for r in failures)
    assert all("errorCode" not in r for r in logins)
    assert all(r["eventType"] == "AwsConsoleSignIn" for r in logins)
    per_user = Counter(r["userIdentity"]["userName"] for r in failures)
    burst_user, count = per_user.most_common(1)[0]
    assert count >= 5
    times = sorted(event_time(r) for r in failures if r["userIdentity"]["userName"] == burst_user)
    assert times[4] - times[0] <= timedelta(seconds=360)
    mfa = Counter(r["additionalEventData"]["MFAUsed"] for r in logins if r not in failures)
    assert mfa["Yes"] >= 1 and mfa["No"] >= 1


def test_added_detection_scenarios_are_present() -> None:
    records = trail(events=0)
    names = Counter(r["eventName"] for r in records)
    for name in (
        "StopLogging",
        "DeleteTrail",
        "UpdateTrail",
        "PutEventSelectors",
        "CreateAccessKey",
        "AttachUserPolicy",
        "AttachRolePolicy",
        "AuthorizeSecurityGroupIngress",
        "PutBucketPolicy",
        "PutBucketAcl",
        "DeleteBucketPublicAccessBlock",
        "ScheduleKeyDeletion",
        "DeleteDetector",
        "GetPasswordData",
        "DeleteObjects",
    ):
        assert names[name] >= 1, name
    assert names["DeleteObject"] >= 20
    key = by_name(records, "CreateAccessKey")[0]
    assert key["requestParameters"]["userName"] != key["userIdentity"]["userName"]
    ingress = by_name(records, "AuthorizeSecurityGroupIngress")[0]
    ranges = ingress["requestParameters"]["ipPermissions"]["items"][0]["ipRanges"]["items"]
    assert ranges == [{"cidrIp": "0.0.0.0/0"}]
    policy = by_name(records, "PutBucketPolicy")[0]["requestParameters"]["bucketPolicy"]
    assert policy["Statement"][0]["Principal"] == "*"
    attached = {r["requestParameters"]["policyArn"] for r in by_name(records, "AttachUserPolicy")}
    assert attached == {"arn:aws:iam::aws:policy/AdministratorAccess"}
    root = [r for r in records if r["userIdentity"]["type"] == "Root"]
    assert {r["eventName"] for r in root} == {"ConsoleLogin", "ListUsers"}
    deletes = sorted(event_time(r) for r in by_name(records, "DeleteObject"))
    assert deletes[-1] - deletes[0] <= timedelta(minutes=2)
    assert all(r["eventCategory"] == "Data" for r in by_name(records, "DeleteObject"))


def test_catalogue_names_expected_rules_and_resolves_names() -> None:
    assert set(DOCUMENTED_RULES) <= expected_rules(SCENARIOS)
    assert all(s.expected_rules for s in SCENARIOS.values())
    assert resolve("all") == list(SCENARIOS)
    assert resolve("console-login-burst, ec2-refused") == ["console-login-burst", "ec2-refused"]
    assert resolve("none") == []
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        resolve("nope")
    with pytest.raises(ValueError, match="12 digits"):
        generate_records(["123"], REGIONS, 10, "all", 0, START)


def test_objects_follow_cloudtrail_layout_and_parse(tmp_path: Path) -> None:
    records = trail(events=500)
    written = write_objects(
        records, tmp_path / "out", organization_id="o-abc123xyz9", seed=7, digest=True
    )
    logs = [p for p in written if "/CloudTrail/" in p]
    digests = [p for p in written if "/CloudTrail-Digest/" in p]
    assert len(digests) == len(ACCOUNTS) * len(REGIONS)
    seen: list[str] = []
    for path in logs:
        key = str(Path(path).relative_to(tmp_path / "out"))
        match = KEY.match(key)
        assert match, key
        assert match["org"] == "o-abc123xyz9" and match["prefix"] is None
        delivered = datetime.strptime(match["stamp"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        assert (match["y"], match["m"], match["d"]) == (
            f"{delivered:%Y}",
            f"{delivered:%m}",
            f"{delivered:%d}",
        )
        parsed = parse_object(Path(path).read_bytes(), key)
        assert parsed.layout == "records" and not parsed.problems
        for item in parsed.records:
            record = item.record
            assert record["recipientAccountId"] == match["account"]
            assert record["awsRegion"] == match["region"]
            assert delivered - timedelta(minutes=5) <= event_time(record) < delivered
            assert json.loads(item.raw) == record
            seen.append(record["eventID"])
    assert sorted(seen) == sorted(r["eventID"] for r in records)
    digest = json.loads(gzip.decompress(Path(digests[0]).read_bytes()))
    assert digest["logFiles"] and digest["awsAccountId"] in ACCOUNTS


def test_s3_output_with_prefix_to_moto(aws_profile: AwsProfile) -> None:
    bucket = f"gen-{uuid.uuid4().hex[:10]}"
    code = main(
        [
            "generate",
            "--events",
            "300",
            "--seed",
            "3",
            "--start",
            "2026-11-20T00:00:00Z",
            "--out",
            f"s3://{bucket}/org/trail",
            "--endpoint-url",
            aws_profile.endpoint,
            "--profile",
            aws_profile.name,
            "--organization-id",
            "o-demo12345",
        ]
    )
    assert code == 0
    s3 = s3_client(aws_profile.endpoint)
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    assert keys and all(k.startswith("org/trail/AWSLogs/o-demo12345/") for k in keys)
    assert all(KEY.match(k)["prefix"] == "org/trail" for k in keys)  # type: ignore[index]
    total = 0
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        total += len(parse_object(body, f"{bucket}/{key}").records)
    assert total == 300


def test_cli_list_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["generate", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "console-login-burst" in listing and "80255" in listing
    assert main(["generate", "--scenario", "bogus", "--out", str(tmp_path)]) == 2
    assert "unknown scenario 'bogus'" in capsys.readouterr().err
    assert main(["generate"]) == 2
    assert main(["generate", "--organization-id", "acme", "--out", str(tmp_path)]) == 2


def test_module_entry_point_writes_a_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trailwarden.common.generator",
            "generate",
            "--events",
            "120",
            "--seed",
            "1",
            "--start",
            "2026-11-20T00:00:00Z",
            "--scenario",
            "console-login-burst,ec2-refused",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 120 records" in result.stdout
    files = list(tmp_path.rglob("*.json.gz"))
    assert files and all(KEY.match(str(f.relative_to(tmp_path))) for f in files)


def fired_rules(records: list[dict]) -> Counter[str]:
    """Run records through the real default ruleset (one Analyzer, as one agent's stream)."""
    from trailwarden.common.model import AgentRef, SourceMeta
    from trailwarden.manager.analysis.pipeline import Analyzer
    from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset

    analyzer = Analyzer(load_ruleset(default_ruleset_paths()), "test-manager")
    source = SourceMeta(source="generated", bucket="trail", key="generated.json.gz")
    agent = AgentRef("001", "generator-test")
    fired: Counter[str] = Counter()
    for record in records:
        outcome = analyzer.analyse(record, json.dumps(record).encode(), source, agent)
        if outcome.alert is not None:
            fired[outcome.alert.rule.id] += 1
    return fired


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_scenario_raises_exactly_its_expected_rules(name: str) -> None:
    fired = fired_rules(trail(events=0, scenarios=name))
    assert set(fired) == set(SCENARIOS[name].expected_rules), dict(fired)


def test_whole_trail_raises_every_expected_rule_and_noise_stays_quiet() -> None:
    records = trail(events=3000)
    fired = fired_rules(records)
    assert expected_rules(SCENARIOS) <= set(fired)
    # The background traffic makes GetCallerIdentity and account-wide inventory calls, which
    # end at their own informational rules (level 3, like 80202) that feed 0352's discovery
    # correlations; no burst of them is reached.
    assert set(fired) == expected_rules(SCENARIOS) | INFORMATIONAL
    noise_alerts = fired_rules(trail(events=1500, scenarios="none"))
    assert set(noise_alerts) == {"80202", *INFORMATIONAL}


INFORMATIONAL = {"80721", "80723"}
"""GetCallerIdentity (80721) and inventory calls (80723)."""


def test_generated_bucket_is_collected_by_the_agent_and_decoded_without_errors(
    aws_profile: AwsProfile, tmp_path: Path
) -> None:
    """The agent's S3 source reads a generated org trail (digests skipped), every record decodes."""
    from trailwarden.agent.collector import Collector
    from trailwarden.agent.spool import Spool
    from trailwarden.common.model import AgentRef
    from trailwarden.common.schema.sources import parse_sources
    from trailwarden.manager.analysis.decode import decode_record

    bucket = f"gen-{uuid.uuid4().hex[:10]}"
    records = trail(events=500)
    write_objects(
        records,
        f"s3://{bucket}",
        organization_id="o-abc123xyz9",
        seed=7,
        digest=True,
        endpoint_url=aws_profile.endpoint,
        profile=aws_profile.name,
    )
    sources = parse_sources(
        [
            {
                "type": "cloudtrail",
                "bucket": bucket,
                "aws_profile": aws_profile.name,
                "aws_organization_id": "o-abc123xyz9",
                "only_logs_after": "2026-11-19",
                "service_endpoint": aws_profile.endpoint,
            }
        ],
        "test",
    )
    spool = Spool(tmp_path / "spool.db", 1 << 30)
    try:
        result = Collector(sources, spool, state_dir=tmp_path).run_once()
        assert result.ok, result.errors
        assert result.records_spooled == len(records)
        batches = spool.pending(0, limit=10_000)
    finally:
        spool.close()
    agent = AgentRef("001", "generator-test")
    seen = []
    for batch in batches:
        assert "/CloudTrail/" in batch.source.key  # digests never become records
        assert batch.source.account_id in {"111111111111", "222222222222"}
        for raw in batch.records:
            event = decode_record(json.loads(raw), batch.source, agent)
            assert event["integration"] == "aws"
            seen.append(event["aws"]["eventID"])
    assert sorted(seen) == sorted(r["eventID"] for r in records)
