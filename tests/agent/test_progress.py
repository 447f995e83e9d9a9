"""The --once progress display: live line on a terminal, log lines otherwise."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import pytest

from tests.agent.helpers import sources
from tests.fixtures.aws import make_record
from trailwarden.agent.collector import Collector
from trailwarden.agent.progress import Progress, human_bytes
from trailwarden.agent.spool import Spool


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _collector(tmp_path: Path, spool: Spool) -> Collector:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"Records": [make_record() for _ in range(3)]}))
    return Collector(sources({"type": "directory", "path": str(folder)}), spool, state_dir=tmp_path)


def test_tty_gets_a_live_line(
    tmp_path: Path, spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("trailwarden.agent.progress.TTY_REFRESH_S", 0.02)
    collector = _collector(tmp_path, spool)
    out = FakeTty()
    progress = Progress(collector.status, spool.stats, stream=out)
    progress.start()
    collector.run_once()
    time.sleep(0.1)
    progress.stop()
    text = out.getvalue()
    assert "\r\x1b[K" in text and text.endswith("\n")
    final = text.rsplit("\r\x1b[K", 1)[1]
    assert "objects 1" in final and "records 3" in final and "records/s" in final
    assert "waiting for acks 1 batches" in final


def test_pipe_gets_log_lines(
    tmp_path: Path, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    collector = _collector(tmp_path, spool)
    out = io.StringIO()
    progress = Progress(collector.status, spool.stats, stream=out)
    with caplog.at_level(logging.INFO, logger="trailwarden.agent.progress"):
        progress.start()
        collector.run_once()
        progress.stop()
    assert out.getvalue() == ""
    assert "progress: objects 1 | records 3" in caplog.text


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(3 * 1024 * 1024) == "3.0 MB"
