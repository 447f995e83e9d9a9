"""Every alert of the real datasets indexes under Wazuh 4.14.9's index template, and the
document carries the fields Wazuh's AWS, MITRE and compliance views read.

The check (``wazuh_index.WazuhIndex``) is written from the template and the Filebeat pipeline
committed under tests/files/wazuh-index; ``test_the_check_refuses_what_the_indexer_refuses``
shows it failing on the documents TrailWarden wrote before the normalisation.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from tests.fixtures.committed_datasets import dataset_objects
from tests.manager.analysis.helpers import record, run
from tests.manager.outputs.wazuh_index import WazuhIndex
from trailwarden.common.model import AgentRef
from trailwarden.manager.analysis.index_shape import index_data
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths, load_ruleset

AGENT = AgentRef("3f2a9c1d0b7e", "aws-prod")


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_ruleset(default_ruleset_paths())


def _documents(ruleset: Ruleset, *datasets: str) -> list[dict[str, Any]]:
    analyzer = Analyzer(ruleset, "manager-1")
    out = []
    for obj in dataset_objects(*datasets):
        for parsed in obj.records:
            outcome = analyzer.analyse(parsed.record, parsed.raw, obj.source, AGENT)
            if outcome.alert is not None:
                out.append(json.loads(outcome.alert.document()))
    return out


def test_every_alert_of_the_datasets_indexes_under_wazuhs_template(ruleset: Ruleset) -> None:
    index = WazuhIndex()
    documents = _documents(ruleset)  # invictus, stratus and otrf into one index
    assert len(documents) == 2_900 + 310 + 103
    refused = [(d["data"]["aws"]["eventName"], index.index(d).reasons) for d in documents]
    refused = [r for r in refused if r[1]]
    assert refused == []
    assert index.documents == len(documents)


def test_the_check_refuses_what_the_indexer_refuses(ruleset: Ruleset) -> None:
    # The documents as TrailWarden wrote them before: data = the decoded event, unshaped.
    analyzer = Analyzer(ruleset, "manager-1")
    index = WazuhIndex()
    reasons: Counter[str] = Counter()
    refused = 0
    for obj in dataset_objects("invictus"):
        for parsed in obj.records:
            outcome = analyzer.analyse(parsed.record, parsed.raw, obj.source, AGENT)
            assert outcome.alert is not None
            document = json.loads(outcome.alert.document())
            document["data"] = outcome.event
            verdict = index.index(document)
            if not verdict.indexed:
                refused += 1
                reasons.update(r.split(":")[0] for r in verdict.reasons)
    assert refused == 10
    assert {
        "data.aws.responseElements.version",
        "data.aws.responseElements.role",
        "data.aws.responseElements.CreateNatGatewayResponse.natGateway.tagSet.item.value",
        "data.aws.requestParameters.disableApiTermination.value",
    } <= set(reasons)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"timestamp": "yesterday"}, "timestamp 'yesterday'"),
        ({"rule": {"level": "high"}}, "rule.level: 'high' is not a number"),
        ({"rule": {"mail": "maybe"}}, "rule.mail: 'maybe' is not a boolean"),
        ({"rule": {"mitre": "T1078"}}, "rule.mitre: a value (str) where an object is"),
        ({"data": {"aws": {"source_ip_address": "ec2.amazonaws.com"}}}, "is not an IP address"),
        ({"agent": {"id": {"n": 1}}}, "an object under agent.id, which is mapped keyword"),
        ({"agent": {"id": {}}}, "agent.id: an object where a value is"),
        ({"data": {"x": [1, {"a": 1}]}}, "an array mixing objects and values"),
    ],
)
def test_the_check_refuses_a_bad_mapped_field(document: dict[str, Any], reason: str) -> None:
    base = {"timestamp": "2026-11-20T09:15:00.123+0000"}
    verdict = WazuhIndex().index({**base, **document})
    assert not verdict.indexed
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_the_document_has_the_fields_wazuhs_views_read(ruleset: Ruleset) -> None:
    analyzer = Analyzer(ruleset, "manager-1")
    login = record(
        eventSource="signin.amazonaws.com",
        eventName="ConsoleLogin",
        eventType="AwsConsoleSignIn",
        userIdentity={"type": "Root", "arn": "arn:aws:iam::123456789012:root"},
        recipientAccountId="210987654321",
        responseElements={"ConsoleLogin": "Success"},
        additionalEventData={"MFAUsed": "No"},
    )
    outcome = run(analyzer, login, agent=AGENT)
    assert outcome.alert is not None
    document = json.loads(outcome.alert.document())
    rule = document["rule"]
    assert rule["id"] == "80504"
    assert rule["mitre"]["id"] == ["T1078.004"]
    assert rule["mitre"]["technique"] == ["Cloud Accounts"]
    assert "Initial Access" in rule["mitre"]["tactic"]
    assert rule["firedtimes"] == 1 and rule["mail"] is False
    failed = run(analyzer, record(eventName="CreateUser", errorCode="AccessDenied"), agent=AGENT)
    assert failed.alert is not None and failed.alert.rule.id == "80250"
    tagged = json.loads(failed.alert.document())["rule"]
    assert not [g for g in tagged["groups"] if re.match(r"(pci_dss|gdpr|hipaa|nist|tsc)_", g)]
    assert tagged["groups"] == ["amazon", "aws", "aws_cloudtrail"]
    assert tagged["pci_dss"] == ["10.6.1", "10.2.4", "10.2.5"]
    assert tagged["nist_800_53"] == ["AU.6", "AU.14", "AC.7"]
    assert tagged["gdpr"] and tagged["hipaa"] and tagged["tsc"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", document["timestamp"])
    assert document["location"] == "Wazuh-AWS"
    assert document["decoder"] == {"name": "json"}
    assert document["agent"] == {"id": "3f2a9c1d0b7e", "name": "aws-prod"}
    assert document["manager"] == {"name": "manager-1"}
    data = document["data"]
    assert "agent" not in data
    aws = data["aws"]
    assert aws["log_info"] == {
        "s3bucket": "example-trail-bucket",
        "log_file": outcome.alert.location.split("/", 1)[1],
        "aws_account_alias": "prod",
    }
    assert aws["aws_account_id"] == "123456789012"  # the key's account ...
    assert aws["recipientAccountId"] == "210987654321"  # ... and the record's, untouched
    assert aws["source_ip_address"] == aws["sourceIPAddress"] == "198.51.100.23"
    assert aws["responseElements"] == {"ConsoleLogin": {"value": "Success"}}


def test_payload_normalisation_is_general() -> None:
    def aws(**fields: Any) -> dict[str, Any]:
        shaped = index_data({"integration": "aws", "aws": fields, "agent": {"id": "x"}})
        assert "agent" not in shaped
        result: dict[str, Any] = shaped["aws"]
        return result

    lambda_role = aws(responseElements={"role": "arn:aws:iam::1:role/r", "version": "$LATEST"})
    iam_role = aws(responseElements={"role": {"roleName": "r"}, "version": 1})
    assert lambda_role["responseElements"] == {
        "role": {"value": "arn:aws:iam::1:role/r"},
        "version": {"value": "$LATEST"},
    }
    assert iam_role["responseElements"] == {
        "role": {"roleName": {"value": "r"}},
        "version": {"value": "1"},
    }
    # Wazuh's own disableApiTermination wrap is what the rule gives, for both shapes AWS writes.
    assert aws(requestParameters={"disableApiTermination": True})["requestParameters"] == {
        "disableApiTermination": {"value": "true"}
    }
    assert aws(requestParameters={"disableApiTermination": {"value": False}})[
        "requestParameters"
    ] == {"disableApiTermination": {"value": "false"}}
    assert aws(requestParameters={"ids": ["a", 2]})["requestParameters"] == {
        "ids": {"value": ["a", "2"]}
    }
    assert aws(requestParameters={"mixed": ["a", {"b": True}]})["requestParameters"] == {
        "mixed": [{"value": "a"}, {"b": {"value": "true"}}]
    }
    assert aws(requestParameters={"string": "raw text"})["requestParameters"] == {
        "string": "raw text"
    }
    assert aws(additionalEventData=["a", "b"])["additionalEventData"] == {"string": '["a","b"]'}
    # Outside the payloads the record is left as AWS wrote it.
    kept = aws(readOnly=True, userIdentity={"type": "IAMUser"}, sourceIPAddress="s3.amazonaws.com")
    assert kept == {
        "readOnly": True,
        "userIdentity": {"type": "IAMUser"},
        "sourceIPAddress": "s3.amazonaws.com",
    }
    assert aws(tags=["a", "b"])["tags"] == {"value": ["a", "b"]}
