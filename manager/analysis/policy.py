"""Facts about the access policy a CloudTrail record carries, as fields rules can test.

CloudTrail records the policy of a request as the API received it: IAM's ``policyDocument`` as
a JSON string, S3's ``bucketPolicy`` as an object. A rule's test sees one field's text, so "a
statement that allows everyone, without a condition that restricts the callers" cannot be a
pattern over that text: a ``Deny`` statement, or a ``Condition`` on the same statement, looks
the same to a regular expression as the grant it limits. These facts are computed from the
parsed document instead, once per event and only when a rule tests one of them:

``trailwarden.policy.allows``
    ``true`` when some statement has ``Effect: Allow`` (a Deny-only document grants nothing).
``trailwarden.policy.allows_all_actions``
    an Allow statement whose ``Action`` is ``*`` or ``iam:*`` (administrator, or the power to
    become one).
``trailwarden.policy.public``
    an Allow statement for ``Principal: "*"`` (or ``{"AWS": "*"}``) with no ``Condition`` that
    restricts who can call: a source VPC, VPC endpoint or IP range, an organisation, an account
    or a principal ARN, tested with a positive operator (``StringEquals``, ``IpAddress`` ...;
    a negated operator or ``...IfExists`` lets callers without the key in).

Each is ``true`` or ``false``; a record without a policy in its request (or whose policy is not
a JSON object) has none of them, so a rule testing one does not match it, negated or not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

PREFIX = "trailwarden.policy."
FIELDS = (PREFIX + "allows", PREFIX + "allows_all_actions", PREFIX + "public")
"""The facts rules can test, by field name (a record's own ``trailwarden`` field, if it had
one, would be read first: CloudTrail records have none)."""

POLICY_PARAMETERS = ("policyDocument", "bucketPolicy", "policy", "resourcePolicy", "policyText")
"""``requestParameters`` keys that hold a policy document (IAM, S3, KMS and Lambda, Secrets
Manager, ECR), tried in this order."""

MAX_POLICY_CHARS = 1 << 20
"""A longer policy text is not parsed (IAM allows 10 KB, S3 20 KB): no facts, no cost."""

ALL_ACTIONS = frozenset({"*", "iam:*"})

RESTRICTING_KEYS = frozenset(
    {
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:vpcsourceip",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:userid",
    }
)
"""Condition keys (lower-case: IAM compares them case-insensitively) that limit the callers of
a ``Principal: "*"`` statement to a network, an organisation or named accounts."""


def policy_facts(event: dict[str, Any]) -> dict[str, str | None]:
    """Every fact of ``FIELDS`` for a decoded event (None each when it carries no policy)."""
    document = _document(event)
    if document is None:
        return dict.fromkeys(FIELDS)
    allows = all_actions = public = False
    for statement in _statements(document):
        if str(statement.get("Effect", "")).lower() != "allow":
            continue
        allows = True
        if any(str(action).lower() in ALL_ACTIONS for action in _items(statement.get("Action"))):
            all_actions = True
        if _everyone(statement.get("Principal")) and not _restricted(statement.get("Condition")):
            public = True
    return {
        FIELDS[0]: _text(allows),
        FIELDS[1]: _text(all_actions),
        FIELDS[2]: _text(public),
    }


def _document(event: dict[str, Any]) -> dict[str, Any] | None:
    aws = event.get("aws")
    params = aws.get("requestParameters") if type(aws) is dict else None
    if type(params) is not dict:
        return None
    for key in POLICY_PARAMETERS:
        value = params.get(key)
        if type(value) is dict:
            return value
        if type(value) is str:
            return _parse(value)
    return None


def _parse(text: str) -> dict[str, Any] | None:
    if len(text) > MAX_POLICY_CHARS:
        return None
    text = text.strip()
    if text.startswith("%7B") or text.startswith("%7b"):
        text = unquote(text)  # some APIs log the URL-encoded form IAM received
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if type(parsed) is dict else None


def _statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    # One statement may be an object, not a list: IAM allows it, and decoding unwraps a
    # one-element list to its element.
    for statement in _items(document.get("Statement")):
        if type(statement) is dict:
            yield statement


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if type(value) is list else [value]


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if type(principal) is dict:
        return "*" in _items(principal.get("AWS"))
    return False


def _restricted(condition: Any) -> bool:
    if type(condition) is not dict:
        return False
    for operator, tests in condition.items():
        if type(tests) is not dict or not _positive(str(operator)):
            continue
        if any(str(key).lower() in RESTRICTING_KEYS for key in tests):
            return True
    return False


def _positive(operator: str) -> bool:
    """A test that a caller without the key (or with another value) fails."""
    name = operator.lower().removeprefix("foranyvalue:")
    if name.startswith("forallvalues:") or name.endswith("ifexists") or name == "null":
        return False
    return "not" not in name


def _text(flag: bool) -> str:
    return "true" if flag else "false"
