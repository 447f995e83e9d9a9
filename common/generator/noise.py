"""Background activity: the read-only Describe/List/Get calls that make up most of a real trail.

None of these carries an error or changes anything, so beyond the catch-all CloudTrail rule they
should raise nothing: they are there to bury the scenarios the way real traffic does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from trailwarden.common.generator.identity import Principal, event_uuid, random_id
from trailwarden.common.generator.records import Scene

Record = dict[str, Any]
Params = Callable[[Scene], dict[str, Any] | None]


def _none(scene: Scene) -> dict[str, Any] | None:
    return None


def _instances(scene: Scene) -> dict[str, Any]:
    return {"instancesSet": {}, "filterSet": {}, "maxResults": 1000}


def _volumes(scene: Scene) -> dict[str, Any]:
    return {"volumeSet": {}, "filterSet": {}}


def _groups(scene: Scene) -> dict[str, Any]:
    return {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}


def _bucket(scene: Scene) -> dict[str, Any]:
    bucket = f"app-assets-{scene.account_id}"
    return {
        "bucketName": bucket,
        "Host": f"{bucket}.s3.{scene.region}.amazonaws.com",
        "location": "",
    }


def _list_objects(scene: Scene) -> dict[str, Any]:
    bucket = f"app-assets-{scene.account_id}"
    return {
        "bucketName": bucket,
        "Host": f"{bucket}.s3.{scene.region}.amazonaws.com",
        "list-type": "2",
        "prefix": "static/",
        "max-keys": "1000",
    }


def _user(scene: Scene) -> dict[str, Any]:
    return {"userName": scene.rng.choice(("alice", "bob", "carol"))}


def _key(scene: Scene) -> dict[str, Any]:
    return {"keyId": f"arn:aws:kms:{scene.region}:{scene.account_id}:key/{event_uuid(scene.rng)}"}


def _trails(scene: Scene) -> dict[str, Any]:
    return {"trailNameList": [], "includeShadowTrails": True}


def _log_groups(scene: Scene) -> dict[str, Any]:
    return {"limit": 50}


def _parameters(scene: Scene) -> dict[str, Any]:
    # DescribeParameters lists metadata only; GetParameters would read values (a detection).
    path = scene.rng.choice(("/app/db", "/app/feature", "/app/api"))
    return {"parameterFilters": [{"key": "Path", "option": "Recursive", "values": [path]}]}


def _functions(scene: Scene) -> dict[str, Any]:
    return {"functionVersion": "ALL", "maxItems": 50}


CALLS: tuple[tuple[str, str, Params], ...] = (
    ("ec2.amazonaws.com", "DescribeInstances", _instances),
    ("ec2.amazonaws.com", "DescribeInstances", _instances),
    ("ec2.amazonaws.com", "DescribeVolumes", _volumes),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", _groups),
    ("ec2.amazonaws.com", "DescribeRegions", lambda s: {"regionSet": {}, "allRegions": False}),
    ("ec2.amazonaws.com", "DescribeVpcs", lambda s: {"vpcSet": {}, "filterSet": {}}),
    ("s3.amazonaws.com", "ListBuckets", lambda s: {"Host": f"s3.{s.region}.amazonaws.com"}),
    ("s3.amazonaws.com", "GetBucketLocation", _bucket),
    ("s3.amazonaws.com", "ListObjects", _list_objects),
    ("iam.amazonaws.com", "ListUsers", lambda s: {"maxItems": 100}),
    ("iam.amazonaws.com", "GetUser", _user),
    ("iam.amazonaws.com", "ListRoles", lambda s: {"maxItems": 100}),
    ("iam.amazonaws.com", "ListAttachedUserPolicies", _user),
    ("sts.amazonaws.com", "GetCallerIdentity", _none),
    ("kms.amazonaws.com", "ListKeys", lambda s: {"limit": 100}),
    ("kms.amazonaws.com", "DescribeKey", _key),
    ("cloudtrail.amazonaws.com", "DescribeTrails", _trails),
    ("cloudtrail.amazonaws.com", "GetTrailStatus", lambda s: {"name": "organization-trail"}),
    ("logs.amazonaws.com", "DescribeLogGroups", _log_groups),
    ("ssm.amazonaws.com", "DescribeParameters", _parameters),
    ("lambda.amazonaws.com", "ListFunctions20150331", _functions),
    ("rds.amazonaws.com", "DescribeDBInstances", lambda s: {"maxRecords": 100}),
    ("guardduty.amazonaws.com", "ListDetectors", lambda s: {"maxResults": 50}),
    ("config.amazonaws.com", "DescribeConfigRules", _none),
)
"""Read-only calls, weighted by repetition (DescribeInstances twice as common)."""


def background_call(scene: Scene) -> Record:
    """One read-only call by a random person, pipeline or AWS service."""
    rng = scene.rng
    principal = scene.account.random_person(rng)
    if principal.identity.get("type") == "AWSService":
        return _service_assume_role(scene, principal)
    source, name, params = rng.choice(CALLS)
    return scene.call(principal, source, name, params(scene), None, read_only=True)


def _service_assume_role(scene: Scene, service: Principal) -> Record:
    """A service assuming its role: how EC2 instance profiles and Lambda get credentials."""
    role = scene.rng.choice(("ec2-app-role", "lambda-exec-role", "aws-config-role"))
    session = f"i-0{random_id(scene.rng, 16, '0123456789abcdef')}"
    arn = f"arn:aws:iam::{scene.account_id}:role/{role}"
    request = {"roleArn": arn, "roleSessionName": session}
    response = {
        "credentials": {
            "accessKeyId": "ASIA" + random_id(scene.rng, 16),
            "sessionToken": "IQoJb3JpZ2luX2VjEHoaCXVzLWVhc3QtMSJHMEUCIQ",
            "expiration": "",
        },
        "assumedRoleUser": {
            "assumedRoleId": f"AROA{random_id(scene.rng, 17)}:{session}",
            "arn": f"arn:aws:sts::{scene.account_id}:assumed-role/{role}/{session}",
        },
    }
    record = scene.call(
        service,
        "sts.amazonaws.com",
        "AssumeRole",
        request,
        response,
        read_only=True,
        resources=[{"accountId": scene.account_id, "type": "AWS::IAM::Role", "ARN": arn}],
    )
    response["credentials"]["expiration"] = _expiry(record["eventTime"])
    return record


def _expiry(event_time: str) -> str:
    """STS writes the credentials' expiry as ``Nov 20, 2026, 11:01:02 AM``."""
    moment = datetime.strptime(event_time, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=1)
    return moment.strftime("%b %d, %Y, %I:%M:%S %p")
