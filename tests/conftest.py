"""Shared fixtures: each area keeps its fixtures in tests/fixtures/<area>.py (one owner each)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI explores the same examples every run (a red build must be reproducible); developers'
# runs keep exploring new ones, and what they find becomes a regression test.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.faults",
    "tests.fixtures.pki",
    "tests.fixtures.postgres",
    "tests.fixtures.system",
    "tests.fixtures.console",  # after system: it builds on running_manager
]


@pytest.fixture(autouse=True)
def clean_aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test may reach real AWS or read the developer's ~/.aws: point everything at nothing."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty = tmp_path_factory.mktemp("aws-empty")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("TRAILWARDEN_CREDENTIALS", raising=False)
