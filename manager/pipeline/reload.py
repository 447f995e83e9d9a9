"""Reload the ruleset without a restart (``trailwarden admin rules reload``, SIGHUP).

The new ruleset is loaded beside the old one from the rule paths manager.toml names now; only
if it loads cleanly does every analyser switch to it, each between two batches (the inline
analyser on its own thread, each worker process as a task in its own queue), and each keeps the
correlation windows of the rules that persist unchanged. A ruleset that does not load leaves the
old one running and the reasons are reported, every one with file:line. A worker process
restarted later builds its analyser from the same files, so it runs the new ruleset too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from trailwarden.common.errors import ConfigError, RulesetError
from trailwarden.manager.analysis.rules.model import Ruleset
from trailwarden.manager.config import load_manager_config
from trailwarden.manager.pipeline.analyzer import load_configured_rules
from trailwarden.manager.pipeline.workers import Analysis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: swapped (``ok``) or kept the old ruleset and why (``errors``)."""

    ok: bool
    rules: int = 0
    """Rules in the ruleset now running (the new one if ok, else the old one)."""
    sigma: int = 0
    """Of which Sigma rules and correlations."""
    files: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        if self.ok:
            return (
                f"ruleset reloaded: {self.rules} rules ({self.sigma} Sigma) "
                f"from {len(self.files)} file(s)"
            )
        return (
            f"ruleset NOT reloaded, the old one ({self.rules} rules) keeps running: "
            f"{len(self.errors)} error(s)"
        )


def _sigma_count(ruleset: Ruleset) -> int:
    return len(ruleset.detections) + len(ruleset.correlations)


class RuleReloader:
    """Reloads the manager's ruleset on request; one reload at a time."""

    def __init__(self, home: Path, analysis: Analysis, current: Ruleset) -> None:
        self.home = home
        self.analysis = analysis
        self.current = current
        self._lock = threading.Lock()

    def reload(self) -> ReloadResult:
        with self._lock:
            try:
                config = load_manager_config(self.home)
                ruleset = load_configured_rules(config)
            except RulesetError as exc:
                return self._kept([str(error) for error in exc.errors])
            except ConfigError as exc:
                return self._kept([str(exc)])
            try:
                self.analysis.replace_ruleset(ruleset)
            except RulesetError as exc:  # a worker could not load what the manager loaded
                return self._kept([str(error) for error in exc.errors])
            self.current = ruleset
            result = ReloadResult(True, len(ruleset.rules), _sigma_count(ruleset), ruleset.sources)
            log.info("stage=rules %s", result.summary())
            return result

    def _kept(self, errors: list[str]) -> ReloadResult:
        result = ReloadResult(
            False,
            len(self.current.rules),
            _sigma_count(self.current),
            self.current.sources,
            tuple(errors),
        )
        log.error("stage=rules %s: %s", result.summary(), "; ".join(errors))
        return result
