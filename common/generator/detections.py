"""Scenarios for the detections TrailWarden adds to Wazuh's: tampering, exposure, persistence.

Each mirrors what an attacker (or a careless operator) does, in the record shapes CloudTrail
logs for those APIs; the Stratus Red Team detonation logs in ``tests/files/datasets`` show the same
calls made against a real account.
"""

from __future__ import annotations

from typing import Any

from trailwarden.common.generator.documented import console_login, iam_date, resource_id
from trailwarden.common.generator.identity import Principal, event_uuid, random_id
from trailwarden.common.generator.records import Scene

Record = dict[str, Any]
CLOUDTRAIL = "cloudtrail.amazonaws.com"
IAM = "iam.amazonaws.com"
EC2 = "ec2.amazonaws.com"
S3 = "s3.amazonaws.com"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
MASS_DELETE_OBJECTS = 30
"""Objects deleted one by one in the mass-deletion burst (within about a minute)."""


def _intruder(scene: Scene) -> Principal:
    """Stolen long-term keys of a real user, used from an unfamiliar address."""
    user = scene.account.iam_user(scene.rng, "dave")
    return Principal(user.identity, "203.0.113.66", user.user_agent)


def _trail_arn(scene: Scene) -> str:
    return f"arn:aws:cloudtrail:{scene.region}:{scene.account_id}:trail/organization-trail"


def cloudtrail_stop(scene: Scene) -> list[Record]:
    """Scenario: logging of the organization trail is switched off (StopLogging)."""
    return [
        scene.call(_intruder(scene), CLOUDTRAIL, "StopLogging", {"name": _trail_arn(scene)}, None)
    ]


def cloudtrail_delete(scene: Scene) -> list[Record]:
    """Scenario: the trail is deleted (DeleteTrail)."""
    return [
        scene.call(_intruder(scene), CLOUDTRAIL, "DeleteTrail", {"name": _trail_arn(scene)}, None)
    ]


def cloudtrail_update(scene: Scene) -> list[Record]:
    """Scenario: the trail is pointed at another bucket (UpdateTrail)."""
    bucket = f"exfil-logs-{random_id(scene.rng, 8).lower()}"
    request = {"name": _trail_arn(scene), "s3BucketName": bucket}
    response = {
        "name": "organization-trail",
        "s3BucketName": bucket,
        "includeGlobalServiceEvents": True,
        "isMultiRegionTrail": True,
        "trailARN": _trail_arn(scene),
        "logFileValidationEnabled": False,
        "isOrganizationTrail": True,
    }
    return [scene.call(_intruder(scene), CLOUDTRAIL, "UpdateTrail", request, response)]


def cloudtrail_event_selectors(scene: Scene) -> list[Record]:
    """Scenario: event selectors changed so management events are no longer logged."""
    selectors = [
        {
            "readWriteType": "ReadOnly",
            "includeManagementEvents": False,
            "dataResources": [],
            "excludeManagementEventSources": [],
        }
    ]
    request = {"trailName": _trail_arn(scene), "eventSelectors": selectors}
    response = {"trailARN": _trail_arn(scene), "eventSelectors": selectors}
    return [scene.call(_intruder(scene), CLOUDTRAIL, "PutEventSelectors", request, response)]


def root_activity(scene: Scene) -> list[Record]:
    """Scenario: someone signs in as the root user and looks around."""
    root = scene.account.root(scene.rng)
    records = [console_login(scene, root, success=True, mfa=True)]
    scene.advance(20, 60)
    records.append(scene.call(root, IAM, "ListUsers", {"maxItems": 100}, None, read_only=True))
    return records


def console_login_without_mfa(scene: Scene) -> list[Record]:
    """Scenario: a console user signs in with a password only."""
    principal = scene.account.iam_user(scene.rng, "bob")
    return [console_login(scene, principal, success=True, mfa=False)]


def access_key_for_other_user(scene: Scene) -> list[Record]:
    """Scenario: dave's stolen keys create an access key for bob (persistence)."""
    actor = _intruder(scene)
    target = "bob"
    response = {
        "accessKey": {
            "accessKeyId": "AKIA" + random_id(scene.rng, 16),
            "status": "Active",
            "userName": target,
            "createDate": iam_date(scene.time),
        }
    }
    return [scene.call(actor, IAM, "CreateAccessKey", {"userName": target}, response)]


def admin_policy_attached(scene: Scene) -> list[Record]:
    """Scenario: AdministratorAccess attached to a user and to a role."""
    actor = _intruder(scene)
    records = [
        scene.call(
            actor, IAM, "AttachUserPolicy", {"userName": "erin", "policyArn": ADMIN_POLICY}, None
        )
    ]
    scene.advance(5, 30)
    records.append(
        scene.call(
            actor,
            IAM,
            "AttachRolePolicy",
            {"roleName": "ci-deployer", "policyArn": ADMIN_POLICY},
            None,
        )
    )
    return records


def security_group_open(scene: Scene) -> list[Record]:
    """Scenario: SSH opened to the whole internet."""
    group = resource_id(scene, "sg")
    permission = {
        "ipProtocol": "tcp",
        "fromPort": 22,
        "toPort": 22,
        "groups": {},
        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
        "ipv6Ranges": {},
        "prefixListIds": {},
    }
    request = {"groupId": group, "ipPermissions": {"items": [permission]}}
    rule = {
        "groupOwnerId": scene.account_id,
        "groupId": group,
        "securityGroupRuleId": resource_id(scene, "sgr"),
        "isEgress": False,
        "ipProtocol": "tcp",
        "fromPort": 22,
        "toPort": 22,
        "cidrIpv4": "0.0.0.0/0",
    }
    response = {
        "requestId": event_uuid(scene.rng),
        "_return": True,
        "securityGroupRuleSet": {"items": [rule]},
    }
    return [scene.call(_intruder(scene), EC2, "AuthorizeSecurityGroupIngress", request, response)]


def _bucket_call(
    scene: Scene, actor: Principal, name: str, bucket: str, extra: dict[str, Any]
) -> Record:
    request = {"bucketName": bucket, "Host": f"{bucket}.s3.{scene.region}.amazonaws.com", **extra}
    return scene.call(
        actor,
        S3,
        name,
        request,
        None,
        resources=[
            {
                "accountId": scene.account_id,
                "type": "AWS::S3::Bucket",
                "ARN": f"arn:aws:s3:::{bucket}",
            }
        ],
        additional={
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": random_id(scene.rng, 76),
            "bytesTransferredOut": 0,
        },
    )


def s3_bucket_public(scene: Scene) -> list[Record]:
    """Scenario: a bucket's public access block removed, then a public policy and ACL."""
    actor = _intruder(scene)
    bucket = f"customer-exports-{scene.account_id}"
    records = [
        _bucket_call(
            scene, actor, "DeleteBucketPublicAccessBlock", bucket, {"publicAccessBlock": ""}
        )
    ]
    scene.advance(5, 20)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    records.append(
        _bucket_call(
            scene, actor, "PutBucketPolicy", bucket, {"bucketPolicy": policy, "policy": ""}
        )
    )
    scene.advance(5, 20)
    owner = {"ID": random_id(scene.rng, 64, "0123456789abcdef")}
    acl = {
        "AccessControlPolicy": {
            "AccessControlList": {
                "Grant": [
                    {
                        "Grantee": {"xsi:type": "CanonicalUser", **owner},
                        "Permission": "FULL_CONTROL",
                    },
                    {"Grantee": {"xsi:type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
                ]
            },
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
            "Owner": owner,
        },
        "acl": "",
        "x-amz-acl": ["public-read"],
    }
    records.append(_bucket_call(scene, actor, "PutBucketAcl", bucket, acl))
    return records


def kms_key_deletion(scene: Scene) -> list[Record]:
    """Scenario: a customer-managed KMS key scheduled for deletion (7 days, the minimum)."""
    key_id = event_uuid(scene.rng)
    arn = f"arn:aws:kms:{scene.region}:{scene.account_id}:key/{key_id}"
    deletion = scene.time.replace(hour=0, minute=0, second=0)
    response = {
        "keyId": arn,
        "deletionDate": iam_date(deletion),
        "keyState": "PendingDeletion",
        "pendingWindowInDays": 7,
    }
    return [
        scene.call(
            _intruder(scene),
            "kms.amazonaws.com",
            "ScheduleKeyDeletion",
            {"keyId": key_id, "pendingWindowInDays": 7},
            response,
            resources=[{"accountId": scene.account_id, "type": "AWS::KMS::Key", "ARN": arn}],
        )
    ]


def guardduty_detector_deleted(scene: Scene) -> list[Record]:
    """Scenario: GuardDuty switched off by deleting its detector."""
    detector = random_id(scene.rng, 32, "0123456789abcdef")
    return [
        scene.call(
            _intruder(scene), "guardduty.amazonaws.com", "DeleteDetector", {"detectorId": detector}
        )
    ]


def ec2_password_data(scene: Scene) -> list[Record]:
    """Scenario: the Windows administrator password of an instance is retrieved."""
    return [
        scene.call(
            _intruder(scene),
            EC2,
            "GetPasswordData",
            {"instanceId": resource_id(scene, "i")},
            None,
            read_only=True,
        )
    ]


def s3_mass_deletion(scene: Scene) -> list[Record]:
    """Scenario: a bucket emptied: DeleteObjects, then DeleteObject one by one (data events)."""
    actor = _intruder(scene)
    bucket = f"finance-archive-{scene.account_id}"
    records = [_bucket_call(scene, actor, "DeleteObjects", bucket, {"delete": ""})]
    records[0]["managementEvent"] = False
    records[0]["eventCategory"] = "Data"
    for number in range(MASS_DELETE_OBJECTS):
        scene.advance(0.5, 2.5)
        key = f"reports/2026/{number:04d}.csv"
        record = _bucket_call(scene, actor, "DeleteObject", bucket, {"key": key})
        record["resources"].insert(
            0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"}
        )
        record["managementEvent"] = False
        record["eventCategory"] = "Data"
        records.append(record)
    return records
