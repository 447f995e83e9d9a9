"""Fixtures for the analysis tests: the default and the semantics rulesets, Analyzers."""

from __future__ import annotations

import pytest

from tests.manager.analysis.helpers import RULES
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths, load_ruleset


@pytest.fixture(scope="session")
def default_ruleset() -> Ruleset:
    return load_ruleset(default_ruleset_paths())


@pytest.fixture()
def analyzer(default_ruleset: Ruleset) -> Analyzer:
    return Analyzer(default_ruleset, "manager-test")


@pytest.fixture(scope="session")
def semantics_ruleset() -> Ruleset:
    return load_ruleset([RULES / "semantics.xml"])


@pytest.fixture()
def semantics(semantics_ruleset: Ruleset) -> Analyzer:
    return Analyzer(semantics_ruleset, "manager-test")
