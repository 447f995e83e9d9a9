"""The shipped ruleset: Wazuh's documented alerts and TrailWarden's detections, on realistic
events (tests/files/events, written from AWS's documented record shapes) and on the shared
datasets (Stratus Red Team detonations, named by technique)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from tests.fixtures.datasets import dataset_file, dataset_files
from tests.manager.analysis.helpers import (
    AGENT,
    SOURCE,
    STRATUS,
    event_file,
    fired,
    record,
    run,
)
from trailwarden.common.logfile import read_file
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset


def _alerts(analyzer: Analyzer, name: str) -> list[str | None]:
    return [fired(analyzer.analyse(rec, raw, SOURCE, AGENT)) for rec, raw in event_file(name)]


@pytest.mark.parametrize(
    ("file", "rule_id", "level"),
    [
        # Wazuh's documented alerts (reference page "CloudTrail use cases").
        ("ec2-run-instances.json", "80202", 3),
        ("ec2-start-instances.json", "80202", 3),
        ("ec2-stop-instances.json", "80202", 3),
        ("ec2-create-security-group.json", "80202", 3),
        ("ec2-allocate-address.json", "80202", 3),
        ("ec2-associate-address.json", "80202", 3),
        ("iam-create-user.json", "80202", 3),
        ("ec2-run-instances-unauthorized.json", "80203", 4),
        ("iam-create-user-access-denied.json", "80250", 5),
        ("signin-console-login-success.json", "80253", 3),
        ("signin-console-login-failure.json", "80254", 5),
        # TrailWarden's detections.
        ("cloudtrail-stop-logging.json", "80500", 12),
        ("cloudtrail-delete-trail.json", "80500", 12),
        ("cloudtrail-put-event-selectors.json", "80501", 10),
        # root creating its own access key: 0351's 80600 (level 12) is tried before 80502.
        ("iam-root-create-access-key.json", "80600", 12),
        ("signin-console-login-no-mfa.json", "80503", 6),
        ("signin-root-console-login.json", "80504", 12),
        ("iam-create-access-key-other-user.json", "80505", 8),
        ("iam-attach-admin-policy.json", "80506", 10),
        ("ec2-authorize-ingress-world.json", "80507", 8),
        ("s3-put-bucket-acl-public.json", "80508", 10),
        ("s3-put-bucket-policy-public.json", "80509", 10),
        ("s3-delete-public-access-block.json", "80510", 10),
        ("kms-schedule-key-deletion.json", "80511", 10),
        ("guardduty-delete-detector.json", "80512", 12),
        ("ec2-get-password-data.json", "80513", 8),
        ("logs-delete-log-group.json", "80517", 10),
        ("iam-put-role-policy-admin.json", "80529", 10),
        ("iam-create-policy-version-default.json", "80530", 8),
        ("securityhub-disable.json", "80531", 10),
        # Near misses stay at the generic alert.
        ("ec2-authorize-ingress-office.json", "80202", 3),
    ],
)
def test_documented_and_added_alerts(
    analyzer: Analyzer, file: str, rule_id: str, level: int
) -> None:
    (rec, raw), *_ = event_file(file)
    outcome = analyzer.analyse(rec, raw, SOURCE, AGENT)
    assert outcome.alert is not None
    assert outcome.alert.rule.id == rule_id
    assert outcome.alert.rule.level == level
    if rule_id.startswith(("805", "806")):
        assert outcome.alert.rule.mitre_ids


def test_documented_alert_descriptions_and_groups(analyzer: Analyzer) -> None:
    ((rec, raw),) = event_file("ec2-run-instances-unauthorized.json")
    alert = analyzer.analyse(rec, raw, SOURCE, AGENT).alert
    assert alert is not None
    assert alert.rule.description == (
        "AWS Cloudtrail: ec2.amazonaws.com - RunInstances. Error: Client.UnauthorizedOperation."
    )
    assert alert.rule.groups[:3] == ("amazon", "aws", "aws_cloudtrail")
    ((rec, raw),) = event_file("signin-console-login-success.json")
    alert = analyzer.analyse(rec, raw, SOURCE, AGENT).alert
    assert alert is not None
    assert alert.rule.mitre_ids == ("T1078",)
    assert "authentication_success" in alert.rule.groups


def test_80255_on_the_fifth_failed_login_within_360_seconds(analyzer: Analyzer) -> None:
    results = _alerts(analyzer, "signin-console-login-failures-burst.json")
    # failures at +0, +70, +125, +210, +300 s -> 5th fires; the 6th starts a new count
    assert results == ["80254", "80254", "80254", "80254", "80255", "80254"]


def test_80255_not_when_failures_are_spread_out(analyzer: Analyzer) -> None:
    burst = event_file("signin-console-login-failures-burst.json")
    times = ["08:40:00", "08:43:00", "08:46:00", "08:49:00", "08:52:00"]
    results = []
    for (rec, _), clock in zip(burst, times, strict=False):
        rec = dict(rec, eventTime=f"2026-11-20T{clock}Z")
        results.append(fired(run(analyzer, rec)))
    assert "80255" not in results


def test_refused_calls_stay_errors_not_detections(analyzer: Analyzer) -> None:
    # Detections (level > 4) are tried before 80203, as Wazuh orders siblings by level; they
    # exclude records with an errorCode so a refused call keeps its error alert.
    denied = record(
        eventName="StopLogging",
        eventSource="cloudtrail.amazonaws.com",
        errorCode="AccessDenied",
        errorMessage="User: ... is not authorized",
    )
    assert fired(run(analyzer, denied)) == "80250"
    refused = record(eventName="GetPasswordData", errorCode="Client.UnauthorizedOperation")
    assert fired(run(analyzer, refused)) == "80514"
    assert fired(run(analyzer, record(eventName="GetPasswordData"))) == "80513"


def test_inline_policies_without_wildcards_are_not_admin(analyzer: Analyzer) -> None:
    scoped = json.dumps(
        {"Statement": [{"Action": ["ec2:Describe*"], "Effect": "Allow", "Resource": "*"}]}
    )
    rec = record(
        eventSource="iam.amazonaws.com",
        eventName="PutRolePolicy",
        requestParameters={"roleName": "r", "policyName": "p", "policyDocument": scoped},
    )
    assert fired(run(analyzer, rec)) == "80202"
    wide = json.dumps(
        {"Statement": [{"Action": ["s3:GetObject", "*"], "Effect": "Allow", "Resource": "*"}]}
    )
    rec["requestParameters"]["policyDocument"] = wide
    assert fired(run(analyzer, rec)) == "80529"


def test_leave_organization_and_weakened_public_access_block(analyzer: Analyzer) -> None:
    leave = record(eventSource="organizations.amazonaws.com", eventName="LeaveOrganization")
    assert fired(run(analyzer, leave)) == "80518"
    block = {
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": False,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
    }
    weakened = record(
        eventSource="s3.amazonaws.com",
        eventName="PutBucketPublicAccessBlock",
        requestParameters={"bucketName": "example-reports", "publicAccessBlock": "", **block},
    )
    assert fired(run(analyzer, weakened)) == "80521"
    block["PublicAccessBlockConfiguration"]["BlockPublicAcls"] = True
    strict = record(
        eventSource="s3.amazonaws.com",
        eventName="PutBucketPublicAccessBlock",
        requestParameters={"bucketName": "example-reports", **block},
    )
    assert fired(run(analyzer, strict)) == "80202"


def test_every_cloudtrail_event_reaches_80202(analyzer: Analyzer) -> None:
    for name in ("FooBarUndocumented", "InvokeModel", "PutFoundationModelEntitlement"):
        assert fired(run(analyzer, record(eventName=name, eventSource="bedrock.amazonaws.com")))


def test_root_use_through_a_service_is_left_to_80605(analyzer: Analyzer) -> None:
    # A call an AWS service made for root (userIdentity.invokedBy) is 0351's 80605; 80502 is
    # root's direct use. Only userIdentity's invokedBy counts: the word in a request does not.
    root = {
        "type": "Root",
        "principalId": "123456789012",
        "arn": "arn:aws:iam::123456789012:root",
        "accountId": "123456789012",
        "invokedBy": "support.amazonaws.com",
    }
    rec = record(
        userIdentity=root, eventSource="cloudtrail.amazonaws.com", eventName="DescribeTrails"
    )
    assert fired(run(analyzer, rec)) != "80502"
    del root["invokedBy"]
    assert fired(run(analyzer, record(userIdentity=root, eventName="DescribeTrails"))) == "80502"
    tagged = record(
        userIdentity=root, eventName="CreateTags", requestParameters={"tagSet": {"invokedBy": "x"}}
    )
    assert fired(run(analyzer, tagged)) == "80502"
    service = record(
        userIdentity=root, eventName="SharedSnapshotCopyInitiated", eventType="AwsServiceEvent"
    )
    assert fired(run(analyzer, service)) == "80202"


def test_mass_object_deletion(analyzer: Analyzer) -> None:
    results = []
    for second in range(22):
        rec = record(
            eventSource="s3.amazonaws.com",
            eventName="DeleteObject",
            eventTime=f"2026-11-20T09:00:{second:02d}Z",
            eventCategory="Data",
            requestParameters={"bucketName": "example-reports", "key": f"r/{second}.csv"},
        )
        results.append(fired(run(analyzer, rec)))
    assert results == ["80251"] * 21 + ["80252"]


# -- the shared datasets ------------------------------------------------------------------------

# Each Stratus detonation and the detection that must fire on it. Where a more specific rule of
# 0352 exists (a trust policy naming a foreign account, a federation token granting "*", a
# Lambda permission for principal "*") it fires instead of 0350's generic one, which keeps its
# own cases in tests/files/detections.
EXPECTED_STRATUS = {
    "aws.defense-evasion.cloudtrail-stop.json": "80500",
    "aws.defense-evasion.cloudtrail-delete.json": "80500",
    "aws.defense-evasion.cloudtrail-event-selectors.json": "80501",
    "aws.defense-evasion.vpc-remove-flow-logs.json": "80517",
    "aws.defense-evasion.dns-delete-logs.json": "80517",
    "aws.defense-evasion.organizations-leave.json": "80756",  # the refused attempt
    "aws.initial-access.console-login-without-mfa.json": "80503",
    "aws.persistence.iam-backdoor-user.json": "80505",
    "aws.persistence.iam-create-admin-user.json": "80506",
    "aws.persistence.iam-create-backdoor-role.json": "80506",
    "aws.persistence.iam-backdoor-role.json": "80710",  # trust to a foreign account
    "aws.persistence.iam-create-user-login-profile.json": "80519",
    "aws.privilege-escalation.iam-update-user-login-profile.json": "80519",
    "aws.persistence.sts-federation-token.json": "80716",  # token granting "*"
    "aws.persistence.rolesanywhere-create-trust-anchor.json": "80527",
    "aws.persistence.lambda-backdoor-function.json": "80759",  # principal "*"
    "aws.persistence.lambda-overwrite-code.json": "80528",
    "aws.persistence.lambda-layer-extension.json": "80528",
    "aws.exfiltration.ec2-security-group-open-port-22-ingress.json": "80507",
    "aws.exfiltration.ec2-share-ami.json": "80516",
    "aws.exfiltration.ec2-share-ebs-snapshot.json": "80516",
    "aws.exfiltration.rds-share-snapshot.json": "80516",
    "aws.credential-access.ec2-get-password-data.json": "80514",
    "aws.credential-access.secretsmanager-retrieve-secrets.json": "80524",
    "aws.credential-access.secretsmanager-batch-retrieve-secrets.json": "80524",
    "aws.credential-access.ssm-retrieve-securestring-parameters.json": "80524",
    "aws.execution.ssm-send-command.json": "80522",
    "aws.execution.ssm-start-session.json": "80522",
    "aws.credential-access.ec2-steal-instance-credentials.json": "80522",
    "aws.execution.ec2-user-data.json": "80515",
    "aws.lateral-movement.ec2-instance-connect.json": "80526",
    "aws.lateral-movement.ec2-serial-console-send-ssh-public-key.json": "80526",
    "aws.execution.ec2-launch-unusual-instances.json": "80758",  # refused p2.xlarge
    "aws.discovery.ec2-download-user-data.json": "80727",  # 15 refused reads
    "aws.impact.bedrock-invoke-model.json": "80532",
}


@pytest.mark.parametrize(("technique", "rule_id"), sorted(EXPECTED_STRATUS.items()))
def test_stratus_detonations_fire_their_detection(
    default_ruleset: Ruleset, technique: str, rule_id: str
) -> None:
    analyzer = Analyzer(default_ruleset, "m")
    parsed = read_file(str(dataset_file(STRATUS, technique)))
    fired_ids = {
        fired(analyzer.analyse(item.record, item.raw, SOURCE, AGENT)) for item in parsed.records
    }
    assert rule_id in fired_ids


def test_every_stratus_technique_has_a_detection(default_ruleset: Ruleset) -> None:
    # Not the generic alerts a refused call stops at: a rule of its own, level 5 or more.
    assert len(EXPECTED_STRATUS) == 35
    for technique, rule_id in EXPECTED_STRATUS.items():
        assert rule_id not in {"80202", "80203", "80250"}, technique
        assert default_ruleset.rules[rule_id].level >= 5, technique


def test_every_dataset_record_alerts_and_nothing_fails(default_ruleset: Ruleset) -> None:
    analyzer = Analyzer(default_ruleset, "m")
    files = dataset_files()
    counts: collections.Counter[str | None] = collections.Counter()
    total = 0
    for path in files:
        for item in read_file(str(path)).records:
            counts[fired(analyzer.analyse(item.record, item.raw, SOURCE, AGENT))] += 1
            total += 1
    assert total > 3000
    assert counts[None] == 0  # every CloudTrail record reaches 80202 or deeper
    assert analyzer.stats()["decode_errors"] == 0
    assert counts["80202"] > total // 2
    # The invictus-ir attack simulation holds trail tampering and a console login without MFA.
    assert counts["80500"] >= 1 and counts["80503"] >= 1
    # Secret reads below the burst threshold, a console login with MFA, refused calls.
    assert counts["80523"] > 100 and counts["80253"] == 1
    assert counts["80203"] > 200 and counts["80250"] > 10


def test_dataset_summary_is_json_serialisable(default_ruleset: Ruleset, tmp_path: Path) -> None:
    analyzer = Analyzer(default_ruleset, "m")
    path = dataset_file(STRATUS, "aws.persistence.iam-create-admin-user.json")
    for item in read_file(str(path)).records:
        outcome = analyzer.analyse(item.record, item.raw, SOURCE, AGENT)
        assert outcome.alert is not None
        json.dumps(outcome.alert.to_wazuh())
