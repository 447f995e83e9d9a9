"""Every reliability test is also a secrets-in-logs test.

An autouse fixture records every log line emitted in the test process and, after the test,
reads every ``*.log`` file the test wrote (subprocess managers and agents log there). None may
hold the AWS secret key used by the test profile, an enrollment token (``tw1_...``) or a
private key. Tests register extra secret values with ``secrets.add(...)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.aws import TEST_SECRET_KEY

TOKEN = re.compile(r"tw1_[A-Za-z0-9_\-]{8,}")
PRIVATE_KEY = "PRIVATE KEY-----"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a broken log call is a bug elsewhere; keep what can be kept
            self.lines.append(str(record.msg))


class Secrets:
    """Values that must never appear in a log; tests add the ones they create."""

    def __init__(self) -> None:
        self.values: set[str] = {TEST_SECRET_KEY}

    def add(self, value: str) -> None:
        self.values.add(value)

    def leaks(self, text: str, origin: str) -> list[str]:
        found = [f"{origin}: secret {v[:6]}..." for v in self.values if v and v in text]
        found += [f"{origin}: enrollment token {m[:8]}..." for m in TOKEN.findall(text)]
        if PRIVATE_KEY in text:
            found.append(f"{origin}: a PEM private key")
        return found


@pytest.fixture
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture(autouse=True)
def no_secrets_in_logs(secrets: Secrets, tmp_path: Path) -> Iterator[None]:
    handler = _Collect()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    ours = logging.getLogger("trailwarden")
    old_level = ours.level
    root.addHandler(handler)
    ours.setLevel(logging.DEBUG)  # our most talkative setting is the one to check
    try:
        yield
    finally:
        root.removeHandler(handler)
        ours.setLevel(old_level)
    leaks = secrets.leaks("\n".join(handler.lines), "log record")
    for log_file in sorted(tmp_path.rglob("*.log")):
        leaks += secrets.leaks(log_file.read_text(errors="replace"), str(log_file))
    assert not leaks, f"secrets written to logs: {leaks}"
