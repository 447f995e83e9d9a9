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

import orjson

from trailwarden.common.model import AgentRef
from trailwarden.manager.analysis.index_shape import index_data
from trailwarden.manager.analysis.mitre import mitre_document

LOCATION = "Wazuh-AWS"
"""The document's ``location``: what Wazuh writes for every event of its AWS integration (the
object each record came from is in ``data.aws.log_info``)."""

COMPLIANCE = ("pci_dss", "gdpr", "hipaa", "nist_800_53", "tsc", "gpg13", "cis")
"""Group name prefixes Wazuh moves out of ``rule.groups`` into ``rule.<prefix>`` lists
(``pci_dss_10.6.1`` -> ``rule.pci_dss: ["10.6.1"]``), the fields its compliance views read."""


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
    mitre_tactics: tuple[str, ...] = ()
    """MITRE ATT&CK tactic names (Sigma rules take them from their tags)."""
    mail: bool = False
    """``rule.mail``: the rule asks for e-mail (``<options>alert_by_email</options>``)."""
    counted: bool = True
    """False for ``<options>no_counter</options>``: no ``rule.firedtimes`` in the document."""
    info: tuple[str, ...] = ()
    """The rule's ``<info>`` texts."""


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

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle as one flat tuple: an analysis worker sends every alert it raises back to the
        manager process, and the default form of a slotted dataclass (a dict of slot names per
        object, a nested RuleHit) cost about three times as much to pickle and unpickle.
        ``data`` goes along only while the document is not rendered yet."""
        rule = self.rule
        return _rebuild, (
            self.id,
            self.timestamp,
            rule.id,
            rule.level,
            rule.description,
            rule.groups,
            rule.mitre_ids,
            rule.firedtimes,
            rule.frequency,
            rule.mitre_tactics,
            rule.mail,
            rule.counted,
            rule.info,
            self.agent,
            self.manager_name,
            self.location,
            {} if self.rendered else self.data,
            self.event_id,
            self.recipient_account,
            self.event_time,
            self.account,
            self.region,
            self.event_source,
            self.event_name,
            self.user,
            self.source_ip,
            self.full_log,
            self.extra,
            self.rendered,
        )

    def document(self) -> str:
        """``to_wazuh()`` as compact JSON, built once: the store row and the alerts file line
        are the same text, and an analysis worker renders it before handing the alert over."""
        if not self.rendered:
            self.rendered = render(self.to_wazuh())
        return self.rendered

    def to_wazuh(self) -> dict[str, Any]:
        """The alert in Wazuh's alerts.json shape (docs/ALERTS.md: every field, and the shape
        ``data`` takes so that every alert indexes under Wazuh's template)."""
        hit = self.rule
        groups, compliance = split_compliance(hit.groups)
        rule: dict[str, Any] = {
            "id": hit.id,
            "level": hit.level,
            "description": hit.description,
            "groups": groups,
        }
        if hit.counted:
            rule["firedtimes"] = hit.firedtimes
        rule["mail"] = hit.mail
        if hit.mitre_ids or hit.mitre_tactics:
            mitre = mitre_document(hit.mitre_ids)
            # Sigma rules name their tactics in their tags; the table knows the others'.
            tactics = mitre.setdefault("tactic", [])
            tactics.extend(t for t in hit.mitre_tactics if t not in tactics)
            rule["mitre"] = mitre
        rule.update(compliance)
        if hit.info:
            rule["info"] = list(hit.info)
        if hit.frequency:
            rule["frequency"] = hit.frequency
        out: dict[str, Any] = {
            "timestamp": wazuh_timestamp(self.timestamp),
            "rule": rule,
            "agent": {"id": self.agent.id, "name": self.agent.name},
            "manager": {"name": self.manager_name},
            "id": self.id,
            "decoder": {"name": "json"},
            "location": LOCATION,
            "data": index_data(self.data),
        }
        if self.full_log:
            out["full_log"] = self.full_log
        return out


def _rebuild(
    alert_id: str,
    timestamp: str,
    rule_id: str,
    level: int,
    description: str,
    groups: tuple[str, ...],
    mitre_ids: tuple[str, ...],
    firedtimes: int,
    frequency: int,
    mitre_tactics: tuple[str, ...],
    mail: bool,
    counted: bool,
    info: tuple[str, ...],
    *rest: Any,
) -> Alert:
    """The inverse of ``Alert.__reduce__``."""
    hit = RuleHit(
        rule_id,
        level,
        description,
        groups,
        mitre_ids,
        firedtimes,
        frequency,
        mitre_tactics,
        mail,
        counted,
        info,
    )
    return Alert(alert_id, timestamp, hit, *rest)


_SPLIT_CACHE: dict[tuple[str, ...], tuple[list[str], dict[str, list[str]]]] = {}


def split_compliance(groups: tuple[str, ...]) -> tuple[list[str], dict[str, list[str]]]:
    """``rule.groups`` without the compliance tags, and the tags by framework, as Wazuh does."""
    cached = _SPLIT_CACHE.get(groups)
    if cached is None:
        plain: list[str] = []
        tags: dict[str, list[str]] = {}
        for group in groups:
            framework = next((c for c in COMPLIANCE if group.startswith(c + "_")), None)
            if framework is None:
                plain.append(group)
            else:
                tags.setdefault(framework, []).append(group[len(framework) + 1 :])
        if len(_SPLIT_CACHE) < 4096:  # one entry per rule: bounded by the ruleset
            _SPLIT_CACHE[groups] = (plain, tags)
        cached = (plain, tags)
    plain, tags = cached
    return list(plain), {framework: list(values) for framework, values in tags.items()}


def wazuh_timestamp(rfc3339: str) -> str:
    """Wazuh's alert timestamp (``2026-11-20T09:15:00.123+0000``) from our RFC 3339 UTC one."""
    if rfc3339.endswith("Z"):
        return rfc3339[:-1] + "+0000"
    if rfc3339.endswith("+00:00"):
        return rfc3339[:-6] + "+0000"
    return rfc3339


def render(document: Mapping[str, Any]) -> str:
    """Compact JSON text of an alert document.

    orjson renders the common alert some ten times faster than ``json.dumps``; what it refuses
    (integers beyond 64 bits, nesting past its limit of 254, both possible only in records
    parsed by the standard library's fallback) is rendered by ``json.dumps`` instead. Both
    write UTF-8 text unescaped and never NaN (records carrying it are refused when parsed).
    """
    try:
        return orjson.dumps(document, default=str).decode()
    except orjson.JSONEncodeError:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)
