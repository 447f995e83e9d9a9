"""Who makes the generated calls: principals, addresses, user agents and TLS details.

Every value comes from the caller's ``random.Random`` so that a seed reproduces the same trail.
Shapes follow the ``userIdentity`` element documented in the CloudTrail user guide
("CloudTrail userIdentity element"): ``IAMUser``, ``AssumedRole`` (with ``sessionContext``),
``Root`` and ``AWSService`` (with ``invokedBy``).
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

_UPPER_DIGITS = string.ascii_uppercase + string.digits
_KEY_CHARS = string.ascii_uppercase + "234567"

IAM_USERS = ("alice", "bob", "carol", "dave", "erin")
"""Human IAM users present in every generated account."""
ROLES = ("Admin", "ReadOnly", "ci-deployer", "OrganizationAccountAccessRole")
"""IAM roles assumed by people and pipelines."""
SERVICES = ("ec2.amazonaws.com", "lambda.amazonaws.com", "config.amazonaws.com")
"""AWS services that call other services on the account's behalf."""

BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
)
SDK_AGENTS = (
    "aws-cli/2.18.4 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.6 "
    "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 "
    "md/prompt#off md/command#ec2.describe-instances",
    "Boto3/1.35.40 md/Botocore#1.35.40 ua/2.0 os/linux#6.1.109 md/arch#x86_64 "
    "lang/python#3.12.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.40",
    "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) "
    "terraform-provider-aws/5.72.1 (+https://registry.terraform.io/providers/hashicorp/aws) "
    "aws-sdk-go-v2/1.32.2 ua/2.1 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-java/2.28.21 Linux/5.10.226-214.880.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/"
    "21.0.5+11-LTS Java/21.0.5 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync "
    "http/Apache cfg/retry-mode/legacy",
)
CONSOLE_AGENT = "AWS Internal"
"""What CloudTrail records as userAgent for API calls the management console makes."""

TLS_CHOICES = (
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
)

# Documentation and test ranges only (RFC 5737), so nothing generated points at a real host.
_PUBLIC_NETS = ("198.51.100.", "203.0.113.", "192.0.2.")


def random_id(rng: random.Random, length: int, alphabet: str = _UPPER_DIGITS) -> str:
    """``length`` characters from ``alphabet``, drawn from ``rng``."""
    return "".join(rng.choices(alphabet, k=length))


def event_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (eventID, requestID)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def public_ip(rng: random.Random) -> str:
    """An internet address from the documentation ranges."""
    return rng.choice(_PUBLIC_NETS) + str(rng.randint(1, 254))


def tls_details(rng: random.Random, host: str) -> dict[str, str]:
    """The ``tlsDetails`` element CloudTrail adds for calls over TLS."""
    version, cipher = rng.choice(TLS_CHOICES)
    return {"tlsVersion": version, "cipherSuite": cipher, "clientProvidedHostHeader": host}


@dataclass(frozen=True, slots=True)
class Principal:
    """One caller: its ``userIdentity`` and the address and agent it calls from."""

    identity: dict[str, Any]
    source_ip: str
    user_agent: str
    console: bool = False
    """Calls made from a console session (sets ``sessionCredentialFromConsole``)."""

    @property
    def name(self) -> str:
        """The user name an alert would show."""
        identity = self.identity
        if identity.get("type") == "AssumedRole":
            return str(identity["arn"]).rsplit("/", 1)[-1]
        return str(identity.get("userName") or identity.get("invokedBy") or "root")


@dataclass(slots=True)
class Account:
    """Stable identities of one generated account (IDs drawn once per account)."""

    account_id: str
    rng: random.Random
    user_ids: dict[str, str] = field(default_factory=dict)
    user_keys: dict[str, str] = field(default_factory=dict)
    role_ids: dict[str, str] = field(default_factory=dict)
    home_ip: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for user in IAM_USERS:
            self.user_ids[user] = "AIDA" + random_id(self.rng, 17)
            self.user_keys[user] = "AKIA" + random_id(self.rng, 16, _KEY_CHARS)
            self.home_ip[user] = public_ip(self.rng)
        for role in ROLES:
            self.role_ids[role] = "AROA" + random_id(self.rng, 17)

    def iam_user(self, rng: random.Random, user: str, *, console: bool = False) -> Principal:
        """An IAM user calling with its long-term key, or from the console."""
        identity: dict[str, Any] = {
            "type": "IAMUser",
            "principalId": self.user_ids[user],
            "arn": f"arn:aws:iam::{self.account_id}:user/{user}",
            "accountId": self.account_id,
            "accessKeyId": ("ASIA" + random_id(rng, 16, _KEY_CHARS))
            if console
            else self.user_keys[user],
            "userName": user,
        }
        if console:
            identity["sessionContext"] = {
                "attributes": {"creationDate": "", "mfaAuthenticated": "true"},
            }
        agent = CONSOLE_AGENT if console else rng.choice(SDK_AGENTS)
        return Principal(identity, self.home_ip[user], agent, console=console)

    def assumed_role(self, rng: random.Random, role: str, session: str) -> Principal:
        """A role session (SSO user, pipeline), with its ``sessionContext``."""
        role_id = self.role_ids[role]
        identity = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{self.account_id}:assumed-role/{role}/{session}",
            "accountId": self.account_id,
            "accessKeyId": "ASIA" + random_id(rng, 16, _KEY_CHARS),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": f"arn:aws:iam::{self.account_id}:role/{role}",
                    "accountId": self.account_id,
                    "userName": role,
                },
                "attributes": {"creationDate": "", "mfaAuthenticated": "false"},
            },
        }
        return Principal(identity, public_ip(rng), rng.choice(SDK_AGENTS))

    def root(self, rng: random.Random, *, console: bool = True) -> Principal:
        """The account's root user."""
        identity = {
            "type": "Root",
            "principalId": self.account_id,
            "arn": f"arn:aws:iam::{self.account_id}:root",
            "accountId": self.account_id,
            "accessKeyId": "ASIA" + random_id(rng, 16, _KEY_CHARS) if console else "",
        }
        agent = rng.choice(BROWSER_AGENTS) if console else rng.choice(SDK_AGENTS)
        return Principal(identity, public_ip(rng), agent, console=console)

    def aws_service(self, rng: random.Random, service: str | None = None) -> Principal:
        """An AWS service acting for the account (``invokedBy``; address = service name)."""
        service = service or rng.choice(SERVICES)
        return Principal({"type": "AWSService", "invokedBy": service}, service, service)

    def random_person(self, rng: random.Random) -> Principal:
        """A human or pipeline caller, for background activity."""
        pick = rng.random()
        if pick < 0.45:
            return self.iam_user(rng, rng.choice(IAM_USERS), console=rng.random() < 0.3)
        if pick < 0.9:
            role = rng.choice(ROLES[:3])
            session = rng.choice(IAM_USERS) if role != "ci-deployer" else f"gh-{random_id(rng, 8)}"
            return self.assumed_role(rng, role, session)
        return self.aws_service(rng)
