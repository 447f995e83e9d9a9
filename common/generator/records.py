"""One CloudTrail record, in the shape the CloudTrail user guide documents.

``Scene`` is what a scenario works with: one account and region at a moment, the random source
and a ``call`` method that turns (principal, service, API, parameters) into a full record with
every field CloudTrail writes for a management (or S3 data) event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from trailwarden.common.generator.identity import (
    Account,
    Principal,
    event_uuid,
    tls_details,
)

GLOBAL_SERVICE_REGION = "us-east-1"
"""IAM, STS (global endpoint) and sign-in events are delivered in us-east-1 by trails."""

_GLOBAL_HOSTS = {"iam.amazonaws.com": "iam.amazonaws.com"}
_SERVICE_EVENT_VERSION = {"signin.amazonaws.com": "1.08"}

REQUIRED_FIELDS = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "eventID",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
)
"""Fields every generated record carries (null where CloudTrail writes null)."""


def iso(moment: datetime) -> str:
    """CloudTrail's ``eventTime`` format: UTC, seconds, ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Scene:
    """Where and when a scenario acts; ``call`` builds its records."""

    rng: random.Random
    account: Account
    region: str
    """The region the scenario acts in (regional services)."""
    regions: tuple[str, ...]
    """All generated regions; global services log in us-east-1 when it is one of them."""
    time: datetime
    """The current moment; ``advance`` moves it forward."""

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def global_region(self) -> str:
        """Region of global-service events (us-east-1 if generated, else the first region)."""
        return GLOBAL_SERVICE_REGION if GLOBAL_SERVICE_REGION in self.regions else self.regions[0]

    def advance(self, low: float = 1.0, high: float = 20.0) -> datetime:
        """Move the clock forward by a random number of seconds; returns the new time."""
        self.time += timedelta(seconds=self.rng.uniform(low, high))
        return self.time

    def call(
        self,
        principal: Principal,
        source: str,
        name: str,
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        *,
        read_only: bool = False,
        error: tuple[str, str] | None = None,
        region: str | None = None,
        resources: list[dict[str, Any]] | None = None,
        additional: dict[str, Any] | None = None,
        event_type: str = "AwsApiCall",
        data_event: bool = False,
    ) -> dict[str, Any]:
        """A full record of ``principal`` calling ``source``'s ``name`` API at ``self.time``.

        ``error`` is (errorCode, errorMessage); a failed call has null ``responseElements``
        as CloudTrail writes it. Global services (IAM, sign-in) default to the global region.
        """
        rng = self.rng
        if region is None:
            region = self.global_region if source in _GLOBAL_HOSTS else self.region
        identity = _identity_at(principal.identity, self.time)
        host = _GLOBAL_HOSTS.get(source) or f"{source.split('.')[0]}.{region}.amazonaws.com"
        record: dict[str, Any] = {
            "eventVersion": _SERVICE_EVENT_VERSION.get(
                source, "1.09" if rng.random() < 0.8 else "1.08"
            ),
            "userIdentity": identity,
            "eventTime": iso(self.time),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": principal.source_ip,
            "userAgent": principal.user_agent,
        }
        if error is not None:
            record["errorCode"], record["errorMessage"] = error
            response = None
        record["requestParameters"] = request
        record["responseElements"] = response
        if additional is not None:
            record["additionalEventData"] = additional
        record["requestID"] = event_uuid(rng)
        record["eventID"] = event_uuid(rng)
        record["readOnly"] = read_only
        if resources is not None:
            record["resources"] = resources
        record["eventType"] = event_type
        record["managementEvent"] = not data_event
        record["recipientAccountId"] = self.account_id
        if principal.identity.get("type") == "AWSService":
            record["sharedEventID"] = event_uuid(rng)
        record["eventCategory"] = "Data" if data_event else "Management"
        if principal.identity.get("type") != "AWSService":
            record["tlsDetails"] = tls_details(rng, host)
        if principal.console:
            record["sessionCredentialFromConsole"] = "true"
        return record


def _copy_tree(value: Any) -> Any:
    """Copy nested dicts and lists (JSON values); much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {key: _copy_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_tree(item) for item in value]
    return value


def _identity_at(identity: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """A copy of ``identity`` whose session started a little before ``moment``."""
    out: dict[str, Any] = _copy_tree(identity)
    attributes = out.get("sessionContext", {}).get("attributes")
    if attributes is not None and not attributes.get("creationDate"):
        attributes["creationDate"] = iso(moment - timedelta(minutes=17))
    return out
