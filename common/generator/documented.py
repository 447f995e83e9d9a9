"""The scenarios of Wazuh's CloudTrail page: EC2 and IAM changes, their refusals, console logins.

Each function takes a ``Scene`` and returns the records one realistic occurrence produces, with
request and response elements shaped as CloudTrail logs those APIs (the EC2 refusals carry
``Client.UnauthorizedOperation`` as EC2 really reports it; IAM's carry ``AccessDenied``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from trailwarden.common.generator.identity import (
    BROWSER_AGENTS,
    IAM_USERS,
    Principal,
    public_ip,
    random_id,
)
from trailwarden.common.generator.records import Scene

_HEX = "0123456789abcdef"
EC2 = "ec2.amazonaws.com"
IAM = "iam.amazonaws.com"
SIGNIN = "signin.amazonaws.com"

Record = dict[str, Any]


def resource_id(scene: Scene, prefix: str, length: int = 17) -> str:
    """An EC2-style resource ID such as ``i-0a1b...``."""
    return f"{prefix}-0{random_id(scene.rng, length - 1, _HEX)}"


def iam_date(moment: datetime) -> str:
    """IAM's ``createDate`` format in responseElements (``Nov 20, 2026, 10:01:02 AM``)."""
    return moment.strftime("%b %d, %Y, %I:%M:%S %p")


def _operator(scene: Scene) -> Principal:
    """Who makes infrastructure changes: an admin role session or a pipeline."""
    if scene.rng.random() < 0.5:
        return scene.account.assumed_role(scene.rng, "Admin", scene.rng.choice(IAM_USERS))
    return scene.account.assumed_role(scene.rng, "ci-deployer", f"gh-{random_id(scene.rng, 8)}")


def _refused_user(scene: Scene) -> Principal:
    """A user whose policies do not allow what it tries."""
    return scene.account.iam_user(scene.rng, "bob")


def _ec2_denied(scene: Scene, principal: Principal, action: str, resource: str) -> tuple[str, str]:
    arn = principal.identity["arn"]
    message = (
        f"You are not authorized to perform this operation. User: {arn} is not authorized to "
        f"perform: ec2:{action} on resource: arn:aws:ec2:{scene.region}:{scene.account_id}:"
        f"{resource} because no identity-based policy allows the ec2:{action} action. "
        f"Encoded authorization failure message: {random_id(scene.rng, 96)}"
    )
    return "Client.UnauthorizedOperation", message


def _instance_item(scene: Scene, instance_id: str, image: str, kind: str) -> dict[str, Any]:
    az = f"{scene.region}{scene.rng.choice('abc')}"
    private_ip = f"10.0.{scene.rng.randint(0, 15)}.{scene.rng.randint(4, 250)}"
    return {
        "instanceId": instance_id,
        "imageId": image,
        "currentInstanceBootMode": "uefi",
        "instanceState": {"code": 0, "name": "pending"},
        "privateDnsName": f"ip-{private_ip.replace('.', '-')}.{scene.region}.compute.internal",
        "amiLaunchIndex": 0,
        "productCodes": {},
        "instanceType": kind,
        "launchTime": int(scene.time.timestamp() * 1000),
        "placement": {"availabilityZone": az, "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "subnetId": resource_id(scene, "subnet"),
        "vpcId": resource_id(scene, "vpc"),
        "privateIpAddress": private_ip,
        "stateReason": {"code": "pending", "message": "pending"},
        "architecture": "x86_64",
        "rootDeviceType": "ebs",
        "rootDeviceName": "/dev/xvda",
        "blockDeviceMapping": {},
        "virtualizationType": "hvm",
        "hypervisor": "xen",
        "groupSet": {"items": [{"groupId": resource_id(scene, "sg"), "groupName": "default"}]},
        "sourceDestCheck": True,
        "networkInterfaceSet": {"items": []},
        "ebsOptimized": False,
        "enaSupport": True,
        "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
        "capacityReservationSpecification": {"capacityReservationPreference": "open"},
        "enclaveOptions": {"enabled": False},
        "metadataOptions": {
            "state": "pending",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 2,
            "httpEndpoint": "enabled",
        },
        "maintenanceOptions": {"autoRecovery": "default"},
    }


def _run_instances(scene: Scene, principal: Principal, refused: bool) -> Record:
    image = f"ami-0{random_id(scene.rng, 16, _HEX)}"
    kind = scene.rng.choice(("t3.micro", "t3.small", "m7i.large"))
    request = {
        "instancesSet": {"items": [{"imageId": image, "minCount": 1, "maxCount": 1}]},
        "instanceType": kind,
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "disableApiStop": False,
        "clientToken": random_id(scene.rng, 36),
        "tagSpecificationSet": {
            "items": [{"resourceType": "instance", "tags": [{"key": "Name", "value": "web-1"}]}]
        },
    }
    if refused:
        error = _ec2_denied(scene, principal, "RunInstances", "instance/*")
        return scene.call(principal, EC2, "RunInstances", request, error=error)
    instance_id = resource_id(scene, "i")
    response = {
        "requestId": random_id(scene.rng, 36),
        "reservationId": resource_id(scene, "r"),
        "ownerId": scene.account_id,
        "groupSet": {},
        "instancesSet": {"items": [_instance_item(scene, instance_id, image, kind)]},
        "requesterId": "",
    }
    return scene.call(principal, EC2, "RunInstances", request, response)


def _state_change(
    scene: Scene, principal: Principal, action: str, refused: bool, states: tuple[Any, Any]
) -> Record:
    instance_id = resource_id(scene, "i")
    request: dict[str, Any] = {"instancesSet": {"items": [{"instanceId": instance_id}]}}
    if action == "StopInstances":
        request["force"] = False
    if refused:
        error = _ec2_denied(scene, principal, action, f"instance/{instance_id}")
        return scene.call(principal, EC2, action, request, error=error)
    (current_code, current), (previous_code, previous) = states
    response = {
        "requestId": random_id(scene.rng, 36),
        "instancesSet": {
            "items": [
                {
                    "instanceId": instance_id,
                    "currentState": {"code": current_code, "name": current},
                    "previousState": {"code": previous_code, "name": previous},
                }
            ]
        },
    }
    return scene.call(principal, EC2, action, request, response)


def _create_security_group(scene: Scene, principal: Principal, refused: bool) -> Record:
    vpc = resource_id(scene, "vpc")
    name = scene.rng.choice(("web-sg", "db-sg", "bastion-sg"))
    request = {"groupName": name, "groupDescription": f"{name} managed by terraform", "vpcId": vpc}
    if refused:
        error = _ec2_denied(scene, principal, "CreateSecurityGroup", "security-group/*")
        return scene.call(principal, EC2, "CreateSecurityGroup", request, error=error)
    group = resource_id(scene, "sg")
    response = {
        "requestId": random_id(scene.rng, 36),
        "_return": True,
        "groupId": group,
        "securityGroupArn": f"arn:aws:ec2:{scene.region}:{scene.account_id}:security-group/{group}",
    }
    return scene.call(principal, EC2, "CreateSecurityGroup", request, response)


def _allocate_address(scene: Scene, principal: Principal, refused: bool) -> Record:
    request = {"domain": "vpc"}
    if refused:
        error = _ec2_denied(scene, principal, "AllocateAddress", "elastic-ip/*")
        return scene.call(principal, EC2, "AllocateAddress", request, error=error)
    response = {
        "requestId": random_id(scene.rng, 36),
        "publicIp": public_ip(scene.rng),
        "domain": "vpc",
        "allocationId": resource_id(scene, "eipalloc"),
        "publicIpv4Pool": "amazon",
        "networkBorderGroup": scene.region,
    }
    return scene.call(principal, EC2, "AllocateAddress", request, response)


def _associate_address(scene: Scene, principal: Principal, refused: bool) -> Record:
    allocation = resource_id(scene, "eipalloc")
    request = {
        "instanceId": resource_id(scene, "i"),
        "allocationId": allocation,
        "allowReassociation": False,
    }
    if refused:
        error = _ec2_denied(scene, principal, "AssociateAddress", f"elastic-ip/{allocation}")
        return scene.call(principal, EC2, "AssociateAddress", request, error=error)
    response = {
        "requestId": random_id(scene.rng, 36),
        "_return": True,
        "associationId": resource_id(scene, "eipassoc"),
    }
    return scene.call(principal, EC2, "AssociateAddress", request, response)


_EC2_ACTIONS: dict[str, Callable[[Scene, Principal, bool], Record]] = {
    "RunInstances": _run_instances,
    "StartInstances": lambda s, p, r: _state_change(
        s, p, "StartInstances", r, ((0, "pending"), (80, "stopped"))
    ),
    "StopInstances": lambda s, p, r: _state_change(
        s, p, "StopInstances", r, ((64, "stopping"), (16, "running"))
    ),
    "CreateSecurityGroup": _create_security_group,
    "AllocateAddress": _allocate_address,
    "AssociateAddress": _associate_address,
}
EC2_ACTIONS = tuple(_EC2_ACTIONS)
"""The EC2 calls Wazuh's page shows, in its order."""


def ec2_action(action: str) -> Callable[[Scene], list[Record]]:
    """Scenario: an operator's successful ``action`` call."""

    def scenario(scene: Scene) -> list[Record]:
        return [_EC2_ACTIONS[action](scene, _operator(scene), False)]

    scenario.__name__ = f"ec2_{action}"
    return scenario


def ec2_refused(scene: Scene) -> list[Record]:
    """Scenario: a user without EC2 permissions tries each documented call and is refused."""
    principal = _refused_user(scene)
    records = []
    for action in EC2_ACTIONS:
        scene.advance(2, 8)
        records.append(_EC2_ACTIONS[action](scene, principal, True))
    return records


def _create_user(scene: Scene, principal: Principal, refused: bool) -> Record:
    new_user = f"svc-{scene.rng.choice(('backup', 'reporting', 'etl'))}-{random_id(scene.rng, 4)}"
    request = {"userName": new_user.lower()}
    arn = f"arn:aws:iam::{scene.account_id}:user/{request['userName']}"
    if refused:
        error = (
            "AccessDenied",
            f"User: {principal.identity['arn']} is not authorized to perform: iam:CreateUser on "
            f"resource: {arn} because no identity-based policy allows the iam:CreateUser action",
        )
        return scene.call(principal, IAM, "CreateUser", request, error=error)
    response = {
        "user": {
            "path": "/",
            "userName": request["userName"],
            "userId": "AIDA" + random_id(scene.rng, 17),
            "arn": arn,
            "createDate": iam_date(scene.time),
        }
    }
    return scene.call(principal, IAM, "CreateUser", request, response)


def iam_create_user(scene: Scene) -> list[Record]:
    """Scenario: an administrator creates an IAM user."""
    admin = scene.account.iam_user(scene.rng, "alice", console=True)
    return [_create_user(scene, admin, False)]


def iam_create_user_refused(scene: Scene) -> list[Record]:
    """Scenario: a user without IAM permissions tries to create a user (AccessDenied)."""
    return [_create_user(scene, _refused_user(scene), True)]


def console_login(scene: Scene, principal: Principal, *, success: bool, mfa: bool) -> Record:
    """A ``ConsoleLogin`` record as sign-in writes it (``AwsConsoleSignIn``)."""
    identity = principal.identity
    user = identity.get("userName", "")
    browser = Principal(
        {k: v for k, v in identity.items() if k not in ("accessKeyId", "sessionContext")},
        principal.source_ip,
        # Each person keeps one browser (stable across runs, unlike hash()).
        BROWSER_AGENTS[sum(map(ord, user)) % len(BROWSER_AGENTS)] if user else principal.user_agent,
    )
    additional: dict[str, Any] = {
        "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
        "MobileVersion": "No",
        "MFAUsed": "Yes" if mfa else "No",
    }
    if mfa:
        name = user or "root-account-mfa-device"
        additional = {
            "LoginTo": additional["LoginTo"],
            "MobileVersion": "No",
            "MFAIdentifier": f"arn:aws:iam::{scene.account_id}:mfa/{name}",
            "MFAUsed": "Yes",
        }
    record = scene.call(
        browser,
        SIGNIN,
        "ConsoleLogin",
        None,
        {"ConsoleLogin": "Success" if success else "Failure"},
        additional=additional,
        event_type="AwsConsoleSignIn",
    )
    if not success:
        # Sign-in writes no errorCode for a bad password, only this message.
        record = _insert_after(record, "userAgent", "errorMessage", "Failed authentication")
    record["tlsDetails"]["clientProvidedHostHeader"] = "signin.aws.amazon.com"
    return record


def _insert_after(record: Record, after: str, key: str, value: Any) -> Record:
    out: Record = {}
    for name, item in record.items():
        out[name] = item
        if name == after:
            out[key] = value
    return out


def console_login_success(scene: Scene) -> list[Record]:
    """Scenario: a user signs in to the console with MFA."""
    return [
        console_login(scene, scene.account.iam_user(scene.rng, "carol"), success=True, mfa=True)
    ]


def console_login_failure(scene: Scene) -> list[Record]:
    """Scenario: one mistyped password."""
    principal = scene.account.iam_user(scene.rng, "dave")
    return [console_login(scene, principal, success=False, mfa=False)]


BURST_FAILURES = 6
"""Failed logins in the burst: more than four within 360 s is Wazuh's 80255."""


def console_login_burst(scene: Scene) -> list[Record]:
    """Scenario: password guessing, ``BURST_FAILURES`` failures for one user within ~2 minutes."""
    principal = scene.account.iam_user(scene.rng, "erin")
    attacker = Principal(principal.identity, public_ip(scene.rng), BROWSER_AGENTS[2])
    records = []
    for _ in range(BURST_FAILURES):
        records.append(console_login(scene, attacker, success=False, mfa=False))
        scene.advance(8, 20)
    return records
