"""The alert: what the rules raise, the store keeps and the outputs ship.

Produced by ``manager/analysis`` from a decoded event, consumed by ``manager/store`` and
``manager/outputs``. ``to_wazuh()`` gives the shape of Wazuh's alerts.json so that Filebeat,
Vector or Fluent Bit pipelines built for Wazuh read our alerts file unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trailwarden.common.model import AgentRef


# Not frozen: a frozen dataclass pays object.__setattr__ per field on construction, and one
# alert is built for nearly every CloudTrail record (80202). Treat alerts as immutable anyway.
@dataclass(slots=True)
class RuleHit:
    """The rule that raised an alert, as it stood when it fired."""

    id: str
    level: int
    description: str
    """With ``$(field)`` already expanded."""
    groups: tuple[str, ...] = ()
    mitre_ids: tuple[str, ...] = ()
    firedtimes: int = 1
    """How many times this rule has fired (Wazuh's counter, per manager process)."""
    frequency: int = 0
    """For correlation rules: the frequency that was reached."""


@dataclass(slots=True)
class Alert:
    """One alert. ``data`` is the decoded event (``integration``, ``aws.*`` ...) as nested dicts."""

    id: str
    """Unique alert ID (``<unix seconds>.<counter>`` like Wazuh's)."""
    timestamp: str
    """RFC 3339 UTC, when the manager raised it."""
    rule: RuleHit
    agent: AgentRef
    manager_name: str
    location: str
    """``bucket/key`` (or file path) the record came from."""
    data: Mapping[str, Any]
    event_id: str = ""
    """CloudTrail eventID."""
    recipient_account: str = ""
    """CloudTrail recipientAccountId; with event_id, the dedupe key."""
    event_time: str = ""
    """CloudTrail eventTime."""
    account: str = ""
    region: str = ""
    event_source: str = ""
    event_name: str = ""
    user: str = ""
    """Best principal name: userName, else the ARN's last part, else the principal ID."""
    source_ip: str = ""
    full_log: str = ""
    """The raw record, as Wazuh's ``full_log``; may be empty to save space."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    rendered: str = ""
    """The alerts.json line, once ``document()`` has built it (then reused by store and file)."""

    def document(self) -> str:
        """``to_wazuh()`` as compact JSON, built once: the store row and the alerts file line
        are the same text, and an analysis worker renders it before handing the alert over."""
        if not self.rendered:
            self.rendered = json.dumps(
                self.to_wazuh(), separators=(",", ":"), ensure_ascii=False, default=str
            )
        return self.rendered

    def to_wazuh(self) -> dict[str, Any]:
        """The alert in Wazuh's alerts.json shape."""
        rule: dict[str, Any] = {
            "id": self.rule.id,
            "level": self.rule.level,
            "description": self.rule.description,
            "groups": list(self.rule.groups),
            "firedtimes": self.rule.firedtimes,
        }
        if self.rule.mitre_ids:
            rule["mitre"] = {"id": list(self.rule.mitre_ids)}
        if self.rule.frequency:
            rule["frequency"] = self.rule.frequency
        out: dict[str, Any] = {
            "timestamp": self.timestamp,
            "rule": rule,
            "agent": {"id": self.agent.id, "name": self.agent.name},
            "manager": {"name": self.manager_name},
            "id": self.id,
            "decoder": {"name": "json"},
            "location": self.location,
            "data": dict(self.data),
        }
        if self.full_log:
            out["full_log"] = self.full_log
        return out
