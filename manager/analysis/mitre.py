"""MITRE ATT&CK names for the technique IDs rules carry, for the alert's ``rule.mitre``.

Wazuh writes ``rule.mitre`` as three parallel lists, ``id``, ``technique`` (the technique's
name) and ``tactic`` (the names of the tactics it serves, each once), looked up in its ATT&CK
database; the dashboard's MITRE view groups alerts by them. This table holds the Enterprise
ATT&CK techniques of the IaaS and identity matrices that CloudTrail rules use (names as ATT&CK
publishes them; a sub-technique by its own name, as Wazuh writes it). An ID not in the table
keeps its ``id`` and adds no name: the alert is still right, only less described.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_CA = "Credential Access"
_CO = "Collection"
_DE = "Defense Evasion"
_DI = "Discovery"
_EX = "Execution"
_EF = "Exfiltration"
_IA = "Initial Access"
_IM = "Impact"
_LM = "Lateral Movement"
_PE = "Privilege Escalation"
_PS = "Persistence"
_RD = "Resource Development"

TECHNIQUES: dict[str, tuple[str, tuple[str, ...]]] = {
    "T1021": ("Remote Services", (_LM,)),
    "T1021.004": ("SSH", (_LM,)),
    "T1021.007": ("Cloud Services", (_LM,)),
    "T1040": ("Network Sniffing", (_CA, _DI)),
    "T1059": ("Command and Scripting Interpreter", (_EX,)),
    "T1059.009": ("Cloud API", (_EX,)),
    "T1069": ("Permission Groups Discovery", (_DI,)),
    "T1069.003": ("Cloud Groups", (_DI,)),
    "T1078": ("Valid Accounts", (_DE, _PS, _PE, _IA)),
    "T1078.001": ("Default Accounts", (_DE, _PS, _PE, _IA)),
    "T1078.004": ("Cloud Accounts", (_DE, _PS, _PE, _IA)),
    "T1087": ("Account Discovery", (_DI,)),
    "T1087.004": ("Cloud Account", (_DI,)),
    "T1098": ("Account Manipulation", (_PS, _PE)),
    "T1098.001": ("Additional Cloud Credentials", (_PS, _PE)),
    "T1098.003": ("Additional Cloud Roles", (_PS, _PE)),
    "T1098.004": ("SSH Authorized Keys", (_PS, _PE)),
    "T1110": ("Brute Force", (_CA,)),
    "T1110.001": ("Password Guessing", (_CA,)),
    "T1110.003": ("Password Spraying", (_CA,)),
    "T1119": ("Automated Collection", (_CO,)),
    "T1133": ("External Remote Services", (_PS, _IA)),
    "T1136": ("Create Account", (_PS,)),
    "T1136.003": ("Cloud Account", (_PS,)),
    "T1190": ("Exploit Public-Facing Application", (_IA,)),
    "T1484": ("Domain or Tenant Policy Modification", (_DE, _PE)),
    "T1484.002": ("Trust Modification", (_DE, _PE)),
    "T1485": ("Data Destruction", (_IM,)),
    "T1486": ("Data Encrypted for Impact", (_IM,)),
    "T1490": ("Inhibit System Recovery", (_IM,)),
    "T1496": ("Resource Hijacking", (_IM,)),
    "T1496.004": ("Cloud Service Hijacking", (_IM,)),
    "T1498": ("Network Denial of Service", (_IM,)),
    "T1526": ("Cloud Service Discovery", (_DI,)),
    "T1528": ("Steal Application Access Token", (_CA,)),
    "T1530": ("Data from Cloud Storage", (_CO,)),
    "T1531": ("Account Access Removal", (_IM,)),
    "T1537": ("Transfer Data to Cloud Account", (_EF,)),
    "T1538": ("Cloud Service Dashboard", (_DI,)),
    "T1546": ("Event Triggered Execution", (_PE, _PS)),
    "T1550": ("Use Alternate Authentication Material", (_DE, _LM)),
    "T1550.001": ("Application Access Token", (_DE, _LM)),
    "T1552": ("Unsecured Credentials", (_CA,)),
    "T1552.005": ("Cloud Instance Metadata API", (_CA,)),
    "T1555": ("Credentials from Password Stores", (_CA,)),
    "T1555.006": ("Cloud Secrets Management Stores", (_CA,)),
    "T1556": ("Modify Authentication Process", (_CA, _DE, _PS)),
    "T1556.006": ("Multi-Factor Authentication", (_CA, _DE, _PS)),
    "T1562": ("Impair Defenses", (_DE,)),
    "T1562.001": ("Disable or Modify Tools", (_DE,)),
    "T1562.007": ("Disable or Modify Cloud Firewall", (_DE,)),
    "T1562.008": ("Disable or Modify Cloud Logs", (_DE,)),
    "T1578": ("Modify Cloud Compute Infrastructure", (_DE,)),
    "T1578.001": ("Create Snapshot", (_DE,)),
    "T1578.002": ("Create Cloud Instance", (_DE,)),
    "T1578.003": ("Delete Cloud Instance", (_DE,)),
    "T1578.005": ("Modify Cloud Compute Configurations", (_DE,)),
    "T1580": ("Cloud Infrastructure Discovery", (_DI,)),
    "T1599": ("Network Boundary Bridging", (_DE,)),
    "T1584.001": ("Domains", (_RD,)),
    "T1606": ("Forge Web Credentials", (_CA,)),
    "T1619": ("Cloud Storage Object Discovery", (_DI,)),
    "T1621": ("Multi-Factor Authentication Request Generation", (_CA,)),
    "T1651": ("Cloud Administration Command", (_EX,)),
    "T1666": ("Modify Cloud Resource Hierarchy", (_DE,)),
}
"""Technique ID -> (name, tactic names)."""


def mitre_document(ids: Iterable[str]) -> dict[str, Any]:
    """``rule.mitre`` as Wazuh writes it: ``id``, ``technique`` and ``tactic`` lists."""
    key = tuple(ids)
    cached = _DOCUMENTS.get(key)
    if cached is None:
        cached = _build(key)
        if len(_DOCUMENTS) < 4096:  # one entry per rule: bounded by the ruleset
            _DOCUMENTS[key] = cached
    return {name: list(values) for name, values in cached.items()}


_DOCUMENTS: dict[tuple[str, ...], dict[str, list[str]]] = {}


def _build(ids: tuple[str, ...]) -> dict[str, Any]:
    out_ids: list[str] = []
    names: list[str] = []
    tactics: list[str] = []
    for technique_id in ids:
        out_ids.append(technique_id)
        known = TECHNIQUES.get(technique_id)
        if known is None:
            continue
        name, its_tactics = known
        names.append(name)
        tactics.extend(t for t in its_tactics if t not in tactics)
    document: dict[str, Any] = {"id": out_ids}
    if names:
        document["technique"] = names
        document["tactic"] = tactics
    return document
