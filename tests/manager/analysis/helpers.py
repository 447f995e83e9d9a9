"""Helpers for the analysis tests: realistic CloudTrail records, files, outcomes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.fixtures.datasets import DATASETS as DATASETS_ROOT
from tests.fixtures.datasets import STRATUS as STRATUS_ROOT
from trailwarden.common.logfile import read_file
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.manager.analysis.pipeline import Analyzer, Outcome

FILES = Path(__file__).resolve().parents[2] / "files"
EVENTS = FILES / "events"
RULES = FILES / "rules"
DATASETS = DATASETS_ROOT
STRATUS = STRATUS_ROOT

AGENT = AgentRef("001", "aws-prod")
SOURCE = SourceMeta(
    source="prod-trail",
    bucket="example-trail-bucket",
    key="AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/20/123456789012_CloudTrail_us-east-1_20261120T0915Z_abc.json.gz",
    account_id="123456789012",
    region="us-east-1",
    account_alias="prod",
)

BASE_RECORD: dict[str, Any] = {
    "eventVersion": "1.09",
    "userIdentity": {
        "type": "IAMUser",
        "principalId": "AIDAJ45Q7YFFAREXAMPLE",
        "arn": "arn:aws:iam::123456789012:user/carol",
        "accountId": "123456789012",
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "userName": "carol",
    },
    "eventTime": "2026-11-20T09:00:00Z",
    "eventSource": "ec2.amazonaws.com",
    "eventName": "DescribeInstances",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.23",
    "userAgent": "aws-cli/2.15.30",
    "requestParameters": None,
    "responseElements": None,
    "requestID": "0d1e2f3a-EXAMPLE",
    "eventID": "00000000-0000-0000-0000-000000000001",
    "readOnly": True,
    "eventType": "AwsApiCall",
    "managementEvent": True,
    "recipientAccountId": "123456789012",
    "eventCategory": "Management",
}


def record(**changes: Any) -> dict[str, Any]:
    """A CloudTrail record: BASE_RECORD with ``changes`` (dotted keys reach nested fields)."""
    out = copy.deepcopy(BASE_RECORD)
    for key, value in changes.items():
        parts = key.split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def raw_of(rec: dict[str, Any]) -> bytes:
    return json.dumps(rec, separators=(",", ":")).encode()


def run(
    analyzer: Analyzer, rec: dict[str, Any], agent: AgentRef = AGENT, trace: bool = False
) -> Outcome:
    return analyzer.analyse(rec, raw_of(rec), SOURCE, agent, trace=trace)


def fired(outcome: Outcome) -> str | None:
    """The alerting rule ID, or None when no alert."""
    return outcome.alert.rule.id if outcome.alert is not None else None


def event_file(name: str) -> list[tuple[dict[str, Any], bytes]]:
    parsed = read_file(str(EVENTS / name))
    return [(item.record, item.raw) for item in parsed.records]
