"""[outputs] alerts_file_min_level keeps low-level alerts out of the file, not out of the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.fixtures.system import make_manager_home
from trailwarden.common.logfile import read_file
from trailwarden.common.model import AgentRef, RecordBatch, SourceMeta
from trailwarden.manager.server import BackgroundManager

EVENTS = Path(__file__).resolve().parents[2] / "files" / "events"


def test_min_level_filters_the_file_only(tmp_path: Path) -> None:
    home = make_manager_home(tmp_path / "m")
    config = home.path / "manager.toml"
    text = config.read_text()
    assert "alerts_file_min_level = 0" in text
    config.write_text(text.replace("alerts_file_min_level = 0", "alerts_file_min_level = 4"))
    records = tuple(
        r.raw
        for name in ("ec2-run-instances.json", "cloudtrail-stop-logging.json")
        for r in read_file(str(EVENTS / name)).records
    )
    background = BackgroundManager(home.path)
    server = background.start()
    try:
        server.ingest.process(AgentRef("a1", "web-1"), RecordBatch(1, SourceMeta("t"), records))
    finally:
        background.stop()
    db = sqlite3.connect(home.path / "manager.db")
    stored = {row[0]: row[1] for row in db.execute("SELECT rule_id, level FROM alerts")}
    db.close()
    assert stored["80202"] == 3 and max(stored.values()) >= 4
    with (home.path / "alerts" / "alerts.json").open() as handle:
        lines = [json.loads(line) for line in handle]
    assert lines and all(line["rule"]["level"] >= 4 for line in lines)
    assert {line["rule"]["id"] for line in lines} == {r for r, lvl in stored.items() if lvl >= 4}
