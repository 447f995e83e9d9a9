"""What a Sigma rule's metadata becomes in our rule model: level, MITRE, groups, metadata.

Levels. Sigma has five levels, Wazuh sixteen (0-15); the mapping puts each Sigma level on the
Wazuh level whose documented meaning it shares (Wazuh's rules classification):

=============  =====  ===========================================================
Sigma          Wazuh  Wazuh's meaning of that level
=============  =====  ===========================================================
informational  3      successful / authorized events (below the 5 of "detections")
low            5      user-generated errors: worth a look, low priority
medium         8      first-time-seen / unusual events
high           12     high-importance events
critical       15     severe attacks, no false positives expected
=============  =====  ===========================================================

A rule without a level gets 8 (medium), the level Sigma's conventions treat as the default
alerting level. MITRE: ``attack.tNNNN[.NNN]`` tags become technique IDs (``T1078.004``),
``attack.<tactic>`` tags (``privilege_escalation`` or ``privilege-escalation``) tactic names
(``Privilege Escalation``); other tags (``cve.*``, ``detection.*``) are kept in the metadata.
"""

from __future__ import annotations

import re
from typing import Any

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

LEVELS = {"informational": 3, "low": 5, "medium": 8, "high": 12, "critical": 15}
DEFAULT_LEVEL = 8
GROUPS = ("sigma", "aws", "cloudtrail")
"""Groups every Sigma rule's alerts carry (XML rules can correlate on them)."""

_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")
_GROUP = re.compile(r"^g\d{4}$")
_SOFTWARE = re.compile(r"^s\d{4}$")


def level_of(rule: SigmaRule | SigmaCorrelationRule) -> int:
    level = rule.level
    return LEVELS[level.name.lower()] if level is not None else DEFAULT_LEVEL


def mitre_of(rule: SigmaRule | SigmaCorrelationRule) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(technique IDs, tactic names) from the rule's ``attack.*`` tags."""
    techniques: list[str] = []
    tactics: list[str] = []
    for tag in rule.tags:
        if tag.namespace != "attack":
            continue
        name = tag.name.lower()
        if _TECHNIQUE.match(name):
            techniques.append(name.upper())
        elif _GROUP.match(name) or _SOFTWARE.match(name):
            continue
        else:
            tactics.append(re.sub(r"[-_]+", " ", name).title())
    return tuple(dict.fromkeys(techniques)), tuple(dict.fromkeys(tactics))


def metadata_of(rule: SigmaRule | SigmaCorrelationRule, file: str) -> dict[str, Any]:
    """What people need to judge an alert: kept with the rule, shown by logtest."""
    return {
        "language": "sigma",
        "file": file,
        "title": rule.title,
        "status": rule.status.name.lower() if rule.status is not None else "",
        "author": rule.author or "",
        "falsepositives": list(rule.falsepositives),
        "references": list(rule.references),
        "tags": [f"{tag.namespace}.{tag.name}" for tag in rule.tags],
        "sigma_level": rule.level.name.lower() if rule.level is not None else "",
    }
