"""The ruleset the rules page lists and the rule test runs: the one manager.toml names.

Loaded with the analyzers' own loader (``pipeline/analyzer.load_configured_rules``) on first use and
again whenever one of its files changes (an edited rule file shows on the next page load, as
the manager picks it up), so the page never lists rules the manager does not run.
"""

from __future__ import annotations

import os
import threading

from trailwarden.manager.analysis.rules import Ruleset
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.pipeline.analyzer import load_configured_rules


class RulesetCache:
    """``get()`` the current ruleset; RulesetError if the files no longer load."""

    def __init__(self, config: ManagerConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._ruleset: Ruleset | None = None
        self._stamp: tuple[tuple[str, int], ...] = ()

    def get(self) -> Ruleset:
        with self._lock:
            if self._ruleset is None or self._stamp != _stamp(self._ruleset):
                self._ruleset = load_configured_rules(self._config)
                self._stamp = _stamp(self._ruleset)
            return self._ruleset


def _stamp(ruleset: Ruleset) -> tuple[tuple[str, int], ...]:
    stamps = []
    for path in ruleset.sources:
        try:
            stamps.append((path, os.stat(path).st_mtime_ns))
        except OSError:
            stamps.append((path, -1))
    return tuple(stamps)
