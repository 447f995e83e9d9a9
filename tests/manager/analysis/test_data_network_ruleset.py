"""The 0351 ruleset (root, data, databases, networks) beyond its per-rule case files: every
detection carries each compliance framework's tags once, and the rules that tell another
account from the record's own (a back-reference to recipientAccountId over the raw record)
are linear on large records and independent of where the record puts recipientAccountId."""

from __future__ import annotations

import time
from typing import Any

from tests.manager.analysis.helpers import BASE_RECORD, fired, record, run
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset

OWN = "123456789012"
FOREIGN = "999988887777"
FILE = "0351-trailwarden-aws-data-network_rules.xml"
FRAMEWORKS = ("pci_dss_", "gdpr_", "hipaa_", "nist_800_53_", "tsc_")


def test_every_detection_has_each_compliance_framework_once(default_ruleset: Ruleset) -> None:
    detections = [
        rule
        for rule in default_ruleset.rules.values()
        if rule.file.endswith(FILE) and rule.level >= 5
    ]
    assert len(detections) >= 45
    for rule in detections:
        assert len(rule.groups) == len(set(rule.groups)), f"rule {rule.id}: repeated groups"
        for framework in FRAMEWORKS:
            assert any(group.startswith(framework) for group in rule.groups), (
                f"rule {rule.id} has no {framework}* group"
            )


def _policy(principals: list[str]) -> dict[str, Any]:
    statements = [
        {
            "Effect": "Allow",
            "Principal": {"AWS": arn},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::example-reports/*",
        }
        for arn in principals
    ]
    return record(
        eventSource="s3.amazonaws.com",
        eventName="PutBucketPolicy",
        readOnly=False,
        requestParameters={
            "bucketName": "example-reports",
            "bucketPolicy": {"Version": "2012-10-17", "Statement": statements},
        },
    )


def test_a_large_own_account_policy_is_decided_quickly_and_not_flagged(
    analyzer: Analyzer,
) -> None:
    # 2,000 own-account principals (about 280 KB): the earlier form of the pattern rescanned
    # the record for every principal and hit the 100 ms match limit here.
    own = [f"arn:aws:iam::{OWN}:role/app-{n}" for n in range(2000)]
    started = time.process_time()
    outcome = run(analyzer, _policy(own))
    assert time.process_time() - started < 0.5
    assert outcome.rule_errors == []
    assert fired(outcome) == "80202"


def test_the_last_of_many_principals_from_another_account_is_found(analyzer: Analyzer) -> None:
    principals = [f"arn:aws:iam::{OWN}:role/app-{n}" for n in range(2000)]
    principals.append(f"arn:aws:iam::{FOREIGN}:root")
    outcome = run(analyzer, _policy(principals))
    assert outcome.rule_errors == []
    assert fired(outcome) == "80643"


def test_recipient_account_anywhere_in_the_record(analyzer: Analyzer) -> None:
    rec = _policy([f"arn:aws:iam::{FOREIGN}:root"])
    rest = {key: value for key, value in rec.items() if key != "recipientAccountId"}
    first = {"recipientAccountId": OWN, **rest}
    assert next(iter(first)) == "recipientAccountId"
    assert fired(run(analyzer, first)) == "80643"
    own_first = dict(first, eventID="own-first")
    own_first["requestParameters"] = _policy([f"arn:aws:iam::{OWN}:root"])["requestParameters"]
    assert fired(run(analyzer, own_first)) == "80202"


def test_a_record_of_another_account_compares_with_that_account(analyzer: Analyzer) -> None:
    # The same key ARN is foreign to 123456789012 and the account's own key in 999988887777.
    key = f"arn:aws:kms:us-east-1:{FOREIGN}:key/9f8e7d6c-1111-2222-3333-444455556666"
    params = {
        "bucketName": "example-reports",
        "key": "2026/q3/summary.csv",
        "x-amz-copy-source": "example-reports/2026/q3/summary.csv",
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": key,
    }
    copy = dict(
        BASE_RECORD,
        eventSource="s3.amazonaws.com",
        eventName="CopyObject",
        eventCategory="Data",
        requestParameters=params,
    )
    assert fired(run(analyzer, dict(copy, eventID="here"))) == "80637"
    theirs = dict(copy, eventID="there", recipientAccountId=FOREIGN)
    assert fired(run(analyzer, theirs)) == "80202"
