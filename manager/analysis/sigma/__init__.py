"""Sigma rules (through pySigma) on CloudTrail events, beside the Wazuh XML rules.

``loader`` parses and checks the files, ``conditions`` and ``values`` compile each rule's
condition into a test on the decoded event, ``index`` files rules under the eventName (or
eventSource) values they require, ``mapping`` gives levels and MITRE from the rule's metadata,
``correlation`` runs correlation rules on event-time windows and ``matcher`` tries every rule
an event can meet.
"""

from __future__ import annotations

from trailwarden.manager.analysis.sigma.loader import SigmaRules, is_sigma_file, load_sigma

__all__ = ["SigmaRules", "is_sigma_file", "load_sigma"]
