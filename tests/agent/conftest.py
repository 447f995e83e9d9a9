from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trailwarden.agent.spool import Spool


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db", 256 << 20)
    yield s
    s.close()
