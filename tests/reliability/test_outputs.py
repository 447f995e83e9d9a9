"""Outputs are part of the delivery guarantee: alerts.json on a really full volume."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.system import ManagerHome, ManagerProcess, run_cli
from tests.reliability.processes import (
    AgentProcess,
    alert_counts,
    enroll_agent_into,
    spool_state,
    stop_quietly,
    stored_count,
    wait_until,
    write_agent_toml,
    write_trail_files,
)

AREA = "Crash and fault"


@pytest.fixture
def small_volume(manager_home: ManagerHome) -> Iterator[Path]:
    """A 384 KiB tmpfs mounted on the manager's alerts folder (a real full filesystem)."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs: run the suite as root (CI does)")
    folder = manager_home.path / "alerts"
    folder.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _file_lines(folder: Path) -> list[str]:
    text = (
        (folder / "alerts.json").read_bytes().decode() if (folder / "alerts.json").exists() else ""
    )
    assert not text or text.endswith("\n"), "alerts.json ends in a torn line"
    return text.splitlines()


def _output_stats(home: ManagerHome) -> dict[str, Any]:
    result = run_cli("admin", "stats", "--json", "--credentials", str(home.credentials))
    assert result.returncode == 0, result.stderr
    outputs: dict[str, Any] = json.loads(result.stdout)["pipeline"]["outputs"]
    return outputs["alerts_file"]


@pytest.mark.slow
def test_alerts_file_on_a_full_volume_keeps_acks_going_and_catches_up_exactly_once(
    manager_home: ManagerHome, small_volume: Path, tmp_path: Path
) -> None:
    """alerts.json on a 384 KiB tmpfs that fills up while an agent process sends 4,000 alerting
    records: the manager keeps acknowledging (the agent's spool empties), logs the failed
    delivery and shows the backlog in `admin stats`; it is SIGKILLed while the volume is full
    and restarted; once the volume has room every stored alert is in alerts.json exactly once,
    in store order, with no torn line."""
    setup = ManagerProcess(manager_home, tmp_path / "setup.log")
    setup.start()
    agent_home = enroll_agent_into(manager_home, tmp_path / "agent", "full-disk")
    assert setup.terminate() == 0
    expected = write_trail_files(tmp_path / "trail", files=8, per_file=500)
    write_agent_toml(
        agent_home,
        manager_home,
        [{"type": "directory", "name": "backfill", "path": str(tmp_path / "trail"), "workers": 2}],
    )
    database = manager_home.path / "manager.db"
    manager = ManagerProcess(manager_home, tmp_path / "manager.log")
    agent = AgentProcess(agent_home, tmp_path / "agent.log")
    manager.start()
    agent.start()
    try:
        wait_until(lambda: stored_count(database) >= len(expected), 120, "every record stored")
        wait_until(lambda: spool_state(agent_home / "spool.db")[0] == 0, 60, "every batch acked")
        assert "delivery failed" in manager.log_path.read_text()
        stats = _output_stats(manager_home)
        assert stats["backlog"] > 0 and stats["failures"] > 0, stats
        assert "No space left" in stats["last_error"], stats
        stored_alerts = sum(alert_counts(database).values())
        assert stored_alerts >= len(expected)
        assert len(_file_lines(small_volume)) < stored_alerts  # the volume really is full

        manager.kill()  # a crash while the output is behind: the cursor must survive it
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_volume)], check=True)
        manager.start()
        wait_until(
            lambda: len(_file_lines(small_volume)) >= stored_alerts, 60, "alerts.json catching up"
        )
        wait_until(lambda: _output_stats(manager_home)["backlog"] == 0, 30, "backlog cleared")
        assert agent.terminate() == 0
        assert manager.terminate() == 0
    finally:
        stop_quietly(agent, manager)
    lines = [json.loads(line) for line in _file_lines(small_volume)]
    ids = Counter(line["id"] for line in lines)
    assert max(ids.values()) == 1, "an alert written twice"
    conn = sqlite3.connect(database)
    try:
        in_store = [row[0] for row in conn.execute("SELECT alert_id FROM alerts ORDER BY seq")]
    finally:
        conn.close()
    assert [line["id"] for line in lines] == in_store
    assert {line["data"]["aws"]["eventID"] for line in lines} >= expected
