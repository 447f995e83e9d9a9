"""Policy facts (trailwarden.policy.*): computed from the policy a record carries, tested by
rules, refused when misspelt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.manager.analysis.helpers import SOURCE, raw_of, record
from trailwarden.common.errors import RulesetError
from trailwarden.common.model import AgentRef
from trailwarden.manager.analysis.decode import decode_record
from trailwarden.manager.analysis.rules import load_ruleset
from trailwarden.manager.analysis.rules.matcher import EventView

ADMIN = {"Effect": "Allow", "Action": "*", "Resource": "*"}
PUBLIC_READ = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}


def _facts(params: dict[str, Any]) -> dict[str, str | None]:
    rec = record(
        eventSource="iam.amazonaws.com", eventName="PutRolePolicy", requestParameters=params
    )
    view = EventView(decode_record(rec, SOURCE, AgentRef("001", "a")), raw_of(rec), decoded=True)
    names = ("allows", "allows_all_actions", "public")
    return {name: view.value(f"trailwarden.policy.{name}") for name in names}


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_an_allow_of_everything_is_all_actions_and_a_deny_of_everything_is_not() -> None:
    assert _facts({"policyDocument": _doc(ADMIN)}) == {
        "allows": "true",
        "allows_all_actions": "true",
        "public": "false",
    }
    deny = dict(ADMIN, Effect="Deny")
    assert _facts({"policyDocument": _doc(deny)}) == {
        "allows": "false",
        "allows_all_actions": "false",
        "public": "false",
    }
    scoped = {"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": "*"}
    assert _facts({"policyDocument": _doc(deny, scoped)})["allows_all_actions"] == "false"
    assert (
        _facts({"policyDocument": _doc(scoped, {**ADMIN, "Action": ["s3:Get*", "IAM:*"]})})[
            "allows_all_actions"
        ]
        == "true"
    )


@pytest.mark.parametrize(
    ("condition", "public"),
    [
        (None, "true"),
        ({"Bool": {"aws:SecureTransport": "true"}}, "true"),
        ({"StringEquals": {"aws:SourceVpc": "vpc-1a2b3c4d"}}, "false"),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, "false"),
        ({"StringEquals": {"aws:PrincipalOrgID": "o-exampleorgid"}}, "false"),
        ({"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-a/r-b/*"}}, "false"),
        # These let in callers from anywhere: not a restriction.
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1a2b3c4d"}}, "true"),
        ({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c4d"}}, "true"),
    ],
)
def test_a_public_grant_honours_a_condition_that_restricts_callers(
    condition: dict[str, Any] | None, public: str
) -> None:
    statement = dict(PUBLIC_READ, **({"Condition": condition} if condition else {}))
    # S3 records bucketPolicy as an object; a one-statement list is unwrapped by decoding.
    assert _facts({"bucketPolicy": {"Statement": [statement]}})["public"] == public


def test_principal_forms_and_encodings() -> None:
    aws_star = dict(PUBLIC_READ, Principal={"AWS": ["arn:aws:iam::111122223333:root", "*"]})
    assert _facts({"policy": _doc(aws_star)})["public"] == "true"
    account = dict(PUBLIC_READ, Principal={"AWS": "arn:aws:iam::111122223333:root"})
    assert _facts({"policy": _doc(account)})["public"] == "false"
    assert _facts({"policyDocument": quote(_doc(ADMIN))})["allows_all_actions"] == "true"


def test_no_policy_or_an_unreadable_one_has_no_facts() -> None:
    empty = dict.fromkeys(("allows", "allows_all_actions", "public"))
    assert _facts({"roleName": "r"}) == empty
    assert _facts({"policyDocument": "{not json"}) == empty
    assert _facts({"policyDocument": "[1, 2]"}) == empty


def test_a_misspelt_fact_is_refused_with_its_line(tmp_path: Path) -> None:
    rules = tmp_path / "local_rules.xml"
    rules.write_text(
        '<group name="local,">\n  <rule id="100100" level="8">\n'
        '    <field name="trailwarden.policy.is_public">^true$</field>\n'
        "    <description>x</description>\n  </rule>\n</group>\n"
    )
    with pytest.raises(RulesetError) as caught:
        load_ruleset([rules])
    message = str(caught.value)
    assert "trailwarden.policy.is_public" in message and "local_rules.xml:3" in message
