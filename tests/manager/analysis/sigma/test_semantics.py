"""Sigma semantics, modifier by modifier: events that must match and events that must not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.manager.analysis.helpers import record
from tests.manager.analysis.sigma.helpers import matcher, matches

Case = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]

CASES: dict[str, Case] = {
    "plain value is case-insensitive equality": (
        {"sel": {"eventName": "stoplogging"}, "condition": "sel"},
        [record(eventName="StopLogging"), record(eventName="STOPLOGGING")],
        [record(eventName="StopLoggingNow"), record(eventName="xStopLogging")],
    ),
    "list of values is OR": (
        {"sel": {"eventName": ["DeleteTrail", "StopLogging"]}, "condition": "sel"},
        [record(eventName="DeleteTrail"), record(eventName="StopLogging")],
        [record(eventName="CreateTrail")],
    ),
    "fields of one selection are AND": (
        {
            "sel": {"eventSource": "iam.amazonaws.com", "eventName": "CreateUser"},
            "condition": "sel",
        },
        [record(eventSource="iam.amazonaws.com", eventName="CreateUser")],
        [
            record(eventSource="sts.amazonaws.com", eventName="CreateUser"),
            record(eventSource="iam.amazonaws.com", eventName="DeleteUser"),
        ],
    ),
    "list of maps is OR of ANDs": (
        {
            "sel": [{"eventName": "A1", "awsRegion": "eu-west-1"}, {"eventName": "B1"}],
            "condition": "sel",
        },
        [record(eventName="A1", awsRegion="eu-west-1"), record(eventName="B1")],
        [record(eventName="A1", awsRegion="us-east-1")],
    ),
    "* wildcard": (
        {"sel": {"eventName": "Delete*Trail"}, "condition": "sel"},
        [record(eventName="DeleteTrail"), record(eventName="deleteMyTrail")],
        [record(eventName="DeleteTrails"), record(eventName="UpdateTrail")],
    ),
    "? wildcard is one character": (
        {"sel": {"eventName": "Get?"}, "condition": "sel"},
        [record(eventName="GetX"), record(eventName="gety")],
        [record(eventName="Get"), record(eventName="GetXY")],
    ),
    "escaped wildcard is literal": (
        {"sel": {"userAgent": "a\\*b"}, "condition": "sel"},
        [record(userAgent="a*b")],
        [record(userAgent="aXb")],
    ),
    "contains": (
        {"sel": {"userAgent|contains": "Boto3"}, "condition": "sel"},
        [record(userAgent="python boto3/1.2"), record(userAgent="BOTO3")],
        [record(userAgent="aws-cli/2")],
    ),
    "startswith": (
        {"sel": {"userIdentity.accessKeyId|startswith": "AKIA"}, "condition": "sel"},
        [
            record(userIdentity__accessKeyId="AKIAEXAMPLE"),
            record(userIdentity__accessKeyId="akia1"),
        ],
        [record(userIdentity__accessKeyId="ASIAEXAMPLE")],
    ),
    "endswith": (
        {"sel": {"userIdentity.arn|endswith": ":root"}, "condition": "sel"},
        [record(userIdentity__arn="arn:aws:iam::123456789012:root")],
        [record(userIdentity__arn="arn:aws:iam::123456789012:root/x")],
    ),
    "contains|all needs every value": (
        {"sel": {"userAgent|contains|all": ["kali", "boto"]}, "condition": "sel"},
        [record(userAgent="Boto3 on Kali linux")],
        [record(userAgent="boto3 on debian")],
    ),
    "cased is case-sensitive": (
        {"sel": {"eventName|cased": "ConsoleLogin"}, "condition": "sel"},
        [record(eventName="ConsoleLogin")],
        [record(eventName="consolelogin")],
    ),
    "re is a case-sensitive search": (
        {"sel": {"userAgent|re": "^aws-cli/[0-9]+"}, "condition": "sel"},
        [record(userAgent="aws-cli/2.15")],
        [record(userAgent="AWS-CLI/2.15"), record(userAgent="x aws-cli/2")],
    ),
    "re|i ignores case": (
        {"sel": {"userAgent|re|i": "kali"}, "condition": "sel"},
        [record(userAgent="on KALI linux")],
        [record(userAgent="on debian")],
    ),
    "re with a literal the engine is skipped without": (
        {"sel": {"userIdentity.arn|re": ".+:assumed-role/aws:.+"}, "condition": "sel"},
        [record(userIdentity__arn="arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1")],
        [
            record(userIdentity__arn="arn:aws:sts::1:assumed-role/AWS:ec2-instance/i-1"),
            record(userIdentity__arn=":assumed-role/aws:"),
        ],
    ),
    "cidr": (
        {"sel": {"sourceIPAddress|cidr": "10.0.0.0/8"}, "condition": "sel"},
        [record(sourceIPAddress="10.1.2.3")],
        [record(sourceIPAddress="11.1.2.3"), record(sourceIPAddress="ec2.amazonaws.com")],
    ),
    "exists true": (
        {"sel": {"errorCode|exists": True}, "condition": "sel"},
        [record(errorCode="AccessDenied")],
        [record(), record(errorCode=None)],
    ),
    "exists false": (
        {"sel": {"errorCode|exists": False}, "condition": "sel"},
        [record()],
        [record(errorCode="AccessDenied")],
    ),
    "null matches missing or null": (
        {"sel": {"eventName": "X1", "errorCode": None}, "condition": "sel"},
        [record(eventName="X1"), record(eventName="X1", errorCode=None)],
        [record(eventName="X1", errorCode="AccessDenied")],
    ),
    "base64": (
        {"sel": {"requestParameters.userData": "#!/bin/bash"}, "condition": "sel"},
        [record(requestParameters={"userData": "#!/bin/bash"})],
        [record(requestParameters={"userData": "#!/bin/sh"})],
    ),
    "base64 modifier": (
        {"sel": {"requestParameters.userData|base64": "curl"}, "condition": "sel"},
        [record(requestParameters={"userData": "Y3VybA=="})],
        [record(requestParameters={"userData": "curl"})],
    ),
    "base64offset|contains": (
        {"sel": {"requestParameters.userData|base64offset|contains": "curl"}, "condition": "sel"},
        [
            record(requestParameters={"userData": "IyEvYmluL3NoCmN1cmwgaHR0cDovL3g="}),
            record(requestParameters={"userData": "eCBjdXJs"}),
        ],
        [record(requestParameters={"userData": "IyEvYmluL3NoCndnZXQ="})],
    ),
    "windash": (
        {"sel": {"requestParameters.command|windash|contains": "-enc"}, "condition": "sel"},
        [
            record(requestParameters={"command": "powershell /enc AAA"}),
            record(requestParameters={"command": "powershell -enc AAA"}),
        ],
        [record(requestParameters={"command": "powershell enc"})],
    ),
    "gt / lte on numbers": (
        {
            "sel": {"requestParameters.maxCount|gt": 10, "requestParameters.minCount|lte": 2},
            "condition": "sel",
        },
        [
            record(requestParameters={"maxCount": 11, "minCount": 2}),
            record(requestParameters={"maxCount": "50", "minCount": 1}),
        ],
        [
            record(requestParameters={"maxCount": 10, "minCount": 1}),
            record(requestParameters={"maxCount": 20, "minCount": 3}),
            record(requestParameters={"maxCount": "many", "minCount": 1}),
        ],
    ),
    "gte / lt": (
        {"sel": {"requestParameters.n|gte": 5, "requestParameters.m|lt": 5}, "condition": "sel"},
        [record(requestParameters={"n": 5, "m": 4.5})],
        [record(requestParameters={"n": 4, "m": 4}), record(requestParameters={"n": 5, "m": 5})],
    ),
    "number equals numerically": (
        {"sel": {"requestParameters.port": 22}, "condition": "sel"},
        [record(requestParameters={"port": 22}), record(requestParameters={"port": "22"})],
        [record(requestParameters={"port": 2222})],
    ),
    "boolean": (
        {"sel": {"eventName": "B2", "readOnly": False}, "condition": "sel"},
        [record(eventName="B2", readOnly=False)],
        [record(eventName="B2", readOnly=True)],
    ),
    "fieldref": (
        {
            "sel": {"userIdentity.userName|fieldref": "requestParameters.userName"},
            "condition": "sel",
        },
        [record(requestParameters={"userName": "CAROL"})],
        [record(requestParameters={"userName": "mallory"}), record()],
    ),
    "nested dotted field": (
        {"sel": {"userIdentity.sessionContext.sessionIssuer.type": "Role"}, "condition": "sel"},
        [record(userIdentity__sessionContext={"sessionIssuer": {"type": "Role"}})],
        [record(userIdentity__sessionContext={"sessionIssuer": {"type": "User"}}), record()],
    ),
    "array field matches any element": (
        {"sel": {"requestParameters.names": "b"}, "condition": "sel"},
        [record(requestParameters={"names": ["a", "B"]})],
        [record(requestParameters={"names": ["a", "c"]})],
    ),
    "not": (
        {
            "sel": {"eventName": "N1"},
            "filter": {"userIdentity.type": "Root"},
            "condition": "sel and not filter",
        },
        [record(eventName="N1")],
        [record(eventName="N1", userIdentity__type="Root"), record(eventName="N2")],
    ),
    "1 of with wildcard": (
        {
            "selection_a": {"eventName": "P1"},
            "selection_b": {"eventName": "P2"},
            "other": {"eventName": "P3"},
            "condition": "1 of selection_*",
        },
        [record(eventName="P1"), record(eventName="P2")],
        [record(eventName="P3")],
    ),
    "all of with wildcard": (
        {
            "sel_name": {"eventName": "Q1"},
            "sel_region": {"awsRegion": "eu-west-1"},
            "condition": "all of sel_*",
        },
        [record(eventName="Q1", awsRegion="eu-west-1")],
        [record(eventName="Q1"), record(awsRegion="eu-west-1")],
    ),
    "all of them": (
        {"a": {"eventName": "R1"}, "b": {"awsRegion": "eu-west-2"}, "condition": "all of them"},
        [record(eventName="R1", awsRegion="eu-west-2")],
        [record(eventName="R1")],
    ),
    "1 of them": (
        {"a": {"eventName": "T1"}, "b": {"awsRegion": "eu-west-3"}, "condition": "1 of them"},
        [record(eventName="T1"), record(awsRegion="eu-west-3")],
        [record(eventName="T2")],
    ),
    "keywords match any value of the record": (
        {"keywords": ["*mimikatz*", "evil.example.com"], "condition": "keywords"},
        [record(userAgent="Mimikatz/2"), record(requestParameters={"h": ["evil.example.com"]})],
        [record(userAgent="aws-cli/2"), record(requestParameters={"h": "xevil.example.com"})],
    ),
    "several conditions are alternatives": (
        {"a": {"eventName": "S1"}, "b": {"eventName": "S2"}, "condition": ["a", "b"]},
        [record(eventName="S1"), record(eventName="S2")],
        [record(eventName="S3")],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sigma_semantics(name: str, tmp_path: Path) -> None:
    detection, positives, negatives = CASES[name]
    analyzer = matcher(tmp_path, detection)
    for event in positives:
        assert matches(analyzer, event), f"{name}: should match {event}"
    for event in negatives:
        assert not matches(analyzer, event), f"{name}: should not match {event}"
