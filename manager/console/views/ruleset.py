"""The ruleset the rules page lists, the rule test runs and the detections panel names.

In a manager it is the ruleset the manager runs now: the console asks the manager's
``RuleReloader`` (``pipeline/reload.py``) for its ``current`` one on every use, so after
``trailwarden admin rules reload`` or SIGHUP the page lists, and the rule test box tests
against, exactly what the analysers switched to — and after a reload that failed, the old
ruleset that keeps running, not the broken files. Edited files show only once reloaded, as
the manager picks them up only then.

Without a manager (a console context built on its own, as a benchmark does), the ruleset is
loaded from the files manager.toml names with the analysers' own loader, and loaded again when
one of those files changes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from trailwarden.manager.analysis.rules import Ruleset
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.pipeline.analyzer import load_configured_rules


class RulesetCache:
    """``get()`` the current ruleset; RulesetError if (without a manager) the files no longer
    load."""

    def __init__(self, config: ManagerConfig, running: Callable[[], Ruleset] | None = None) -> None:
        """``running``: the manager's ruleset now (``RuleReloader.current``); None: the files."""
        self._config = config
        self._running = running
        self._lock = threading.Lock()
        self._ruleset: Ruleset | None = None
        self._stamp: tuple[tuple[str, int], ...] = ()

    def get(self) -> Ruleset:
        if self._running is not None:
            return self._running()
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
