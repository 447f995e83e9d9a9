"""Load a ruleset from Wazuh XML files and Sigma files together, collecting every error.

Paths are files or directories. A directory contributes its ``*.xml`` files (Wazuh rules) and
its ``*.yml``/``*.yaml`` files (Sigma rules), in name order; a file is read by its suffix. The
XML rules become the rule tree, the Sigma rules the ``detections`` and ``correlations`` tried
beside it on every event. Both share one rule namespace, without clashes: a Sigma ID is a UUID
(pySigma refuses anything else), a Wazuh ID a number. Errors from both languages are
collected into one ``RulesetError`` (file order, then line); a ruleset that holds no rule at
all is refused too: a manager whose configured rules load nothing would watch nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from trailwarden.common.errors import RuleError, RulesetError
from trailwarden.manager.analysis.rules.loader import load_ruleset
from trailwarden.manager.analysis.rules.model import Ruleset
from trailwarden.manager.analysis.sigma.loader import SIGMA_SUFFIXES, is_sigma_file, load_sigma

log = logging.getLogger(__name__)

XML_SUFFIX = ".xml"


def rule_files(paths: Sequence[Path], errors: list[RuleError]) -> Iterable[Path]:
    """The rule files named by ``paths`` (directories expanded), in load order."""
    if not paths:
        errors.append(RuleError("no rule files given"))
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and (p.suffix == XML_SUFFIX or p.suffix.lower() in SIGMA_SUFFIXES)
            )
            if not found:
                errors.append(
                    RuleError("directory holds no rule files (*.xml, *.yml)", file=str(path))
                )
            yield from found
        elif path.is_file():
            yield path
        else:
            errors.append(RuleError("no such file or directory", file=str(path)))


def load_rules(paths: Sequence[Path], lists_root: Path | None = None) -> Ruleset:
    """Load XML and Sigma rules from ``paths``; RulesetError holding every problem if broken."""
    errors: list[RuleError] = []
    files = list(rule_files(paths, errors))
    xml_files = [f for f in files if not is_sigma_file(f)]
    sigma_files = [f for f in files if is_sigma_file(f)]
    ruleset = Ruleset(rules={}, roots=[])
    if xml_files:
        try:
            ruleset = load_ruleset(xml_files, lists_root)
        except RulesetError as exc:
            errors.extend(exc.errors)
    sigma = load_sigma(sigma_files, first_order=len(ruleset.rules)) if sigma_files else None
    if sigma is not None:
        errors.extend(sigma.errors)
        ruleset = replace(
            ruleset,
            rules={**ruleset.rules, **sigma.rules},
            detections=tuple(sigma.detections),
            correlations=tuple(sigma.correlations),
        )
    if not errors and not ruleset.rules:
        errors.append(RuleError("the ruleset holds no rules at all"))
    if errors:
        order = {str(f): i for i, f in enumerate(files)}
        raise RulesetError(sorted(errors, key=lambda e: (order.get(e.file, len(order)), e.line)))
    ruleset = replace(ruleset, sources=tuple(str(f) for f in files))
    log.debug(
        "stage=rules loaded rules=%d sigma=%d files=%d",
        len(ruleset.rules),
        len(ruleset.detections) + len(ruleset.correlations),
        len(files),
    )
    return ruleset
