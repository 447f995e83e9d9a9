"""The scenario catalogue: name → what it shows, which rules must fire, how to build it.

Tests and ``trailwarden demo`` read ``expected_rules`` to check that every alert the generated
trail should raise was raised. IDs 802xx are Wazuh's documented CloudTrail rules; the others
are the detections of TrailWarden's default ruleset (``manager/ruleset``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from trailwarden.common.generator import detections, documented
from trailwarden.common.generator.records import Scene

DOCUMENTED_RULES = ("80202", "80203", "80250", "80253", "80254", "80255")
"""The rule IDs Wazuh's CloudTrail page shows."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One catalogued scenario."""

    description: str
    """What happens, in one line."""
    expected_rules: tuple[str, ...]
    """Rule IDs its records must raise (the deepest matching rule of each record)."""
    build: Callable[[Scene], list[dict[str, Any]]]
    """Returns the scenario's records, starting at ``scene.time``."""
    documented: bool = False
    """One of the use cases on Wazuh's CloudTrail page."""


def _doc(description: str, rules: tuple[str, ...], build: Callable[[Scene], list[Any]]) -> Scenario:
    return Scenario(description, rules, build, documented=True)


SCENARIOS: dict[str, Scenario] = {
    "ec2-run-instances": _doc(
        "EC2 RunInstances (new instance)", ("80202",), documented.ec2_action("RunInstances")
    ),
    "ec2-start-instances": _doc(
        "EC2 StartInstances", ("80202",), documented.ec2_action("StartInstances")
    ),
    "ec2-stop-instances": _doc(
        "EC2 StopInstances", ("80202",), documented.ec2_action("StopInstances")
    ),
    "ec2-create-security-group": _doc(
        "EC2 CreateSecurityGroup", ("80202",), documented.ec2_action("CreateSecurityGroup")
    ),
    "ec2-allocate-address": _doc(
        "EC2 AllocateAddress (new Elastic IP)", ("80202",), documented.ec2_action("AllocateAddress")
    ),
    "ec2-associate-address": _doc(
        "EC2 AssociateAddress (Elastic IP attached)",
        ("80202",),
        documented.ec2_action("AssociateAddress"),
    ),
    "ec2-refused": _doc(
        "the six EC2 calls refused (Client.UnauthorizedOperation)",
        ("80203",),
        documented.ec2_refused,
    ),
    "iam-create-user": _doc("IAM CreateUser", ("80202",), documented.iam_create_user),
    "iam-create-user-refused": _doc(
        "IAM CreateUser refused (AccessDenied)", ("80250",), documented.iam_create_user_refused
    ),
    "console-login-success": _doc(
        "console login with MFA", ("80253",), documented.console_login_success
    ),
    "console-login-failure": _doc(
        "console login failed (bad password)", ("80254",), documented.console_login_failure
    ),
    "console-login-burst": _doc(
        f"{documented.BURST_FAILURES} failed console logins for one user within 2 minutes",
        ("80254", "80255"),
        documented.console_login_burst,
    ),
    "cloudtrail-stop": Scenario(
        "CloudTrail StopLogging on the organization trail", ("80500",), detections.cloudtrail_stop
    ),
    "cloudtrail-delete": Scenario(
        "CloudTrail DeleteTrail", ("80500",), detections.cloudtrail_delete
    ),
    "cloudtrail-update": Scenario(
        "CloudTrail UpdateTrail to another bucket", ("80501",), detections.cloudtrail_update
    ),
    "cloudtrail-event-selectors": Scenario(
        "CloudTrail PutEventSelectors dropping management events",
        ("80501",),
        detections.cloudtrail_event_selectors,
    ),
    "root-activity": Scenario(
        "root user console login and API call", ("80504", "80502"), detections.root_activity
    ),
    "console-login-no-mfa": Scenario(
        "console login without MFA", ("80503",), detections.console_login_without_mfa
    ),
    "access-key-other-user": Scenario(
        "CreateAccessKey for another user", ("80505",), detections.access_key_for_other_user
    ),
    "admin-policy-attached": Scenario(
        "AdministratorAccess attached to a user and a role",
        ("80506",),
        detections.admin_policy_attached,
    ),
    "security-group-open": Scenario(
        "security group opened to 0.0.0.0/0 on port 22", ("80507",), detections.security_group_open
    ),
    "s3-bucket-public": Scenario(
        "bucket public access block removed, public policy and public-read ACL",
        ("80510", "80509", "80508"),
        detections.s3_bucket_public,
    ),
    "kms-key-deletion": Scenario(
        "KMS ScheduleKeyDeletion", ("80511",), detections.kms_key_deletion
    ),
    "guardduty-detector-deleted": Scenario(
        "GuardDuty DeleteDetector", ("80512",), detections.guardduty_detector_deleted
    ),
    "ec2-password-data": Scenario("EC2 GetPasswordData", ("80513",), detections.ec2_password_data),
    "s3-mass-deletion": Scenario(
        f"DeleteObjects then {detections.MASS_DELETE_OBJECTS} DeleteObject calls within a minute",
        ("80251", "80252"),
        detections.s3_mass_deletion,
    ),
}
"""Every scenario, in the order a generated trail plays them."""


def resolve(names: str | Iterable[str]) -> list[str]:
    """Scenario names from ``all``, a comma-separated string or a list; ValueError if unknown."""
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",") if part.strip()]
    chosen: list[str] = []
    for name in names:
        if name == "all":
            chosen.extend(n for n in SCENARIOS if n not in chosen)
        elif name in ("none", ""):
            continue
        elif name in SCENARIOS:
            if name not in chosen:
                chosen.append(name)
        else:
            known = ", ".join(SCENARIOS)
            raise ValueError(f"unknown scenario {name!r} (known: all, none, {known})")
    return chosen


def expected_rules(names: Iterable[str]) -> set[str]:
    """Every rule ID the named scenarios must raise."""
    return {rule for name in names for rule in SCENARIOS[name].expected_rules}
