"""Wazuh-compatible XML rules: model, loader, pattern languages, lists and the tree matcher.

Public entry points: ``load_ruleset`` (raises ``RulesetError`` holding every ``RuleError``
with file:line) and ``default_ruleset_paths`` (the ruleset shipped with the manager).
"""

from __future__ import annotations

from pathlib import Path

from trailwarden.manager.analysis.rules.loader import load_ruleset
from trailwarden.manager.analysis.rules.model import Rule, Ruleset

__all__ = ["Rule", "Ruleset", "default_lists_root", "default_ruleset_paths", "load_ruleset"]

_RULESET_DIR = Path(__file__).resolve().parent.parent.parent / "ruleset"


def default_ruleset_paths() -> list[Path]:
    """The XML files of the default ruleset shipped with the manager, in load order."""
    return sorted(_RULESET_DIR.glob("*.xml"))


def default_lists_root() -> Path:
    """Where the default ruleset's ``<list>`` paths resolve (its own folder)."""
    return _RULESET_DIR
