"""An agent that vanishes while the manager's analysis workers hold its batches."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fixtures.system import ManagerProcess, make_manager_home
from tests.reliability.processes import (
    AgentProcess,
    enroll_agent_into,
    stop_quietly,
    stored_count,
    stored_ids,
    wait_until,
    write_agent_toml,
    write_trail_files,
)

AREA = "Crash and fault"


@pytest.mark.slow
def test_agent_killed_while_its_batches_are_analysed_logs_no_traceback(tmp_path: Path) -> None:
    """The production layout (2 analysis worker processes) and an agent process SIGKILLed three
    times while its batches queue in the workers: the manager logs no traceback (no
    InvalidStateError from the abandoned analyses) and, after the agent restarts, every record
    is stored."""
    home = make_manager_home(tmp_path / "manager", analysis_workers=2)
    manager = ManagerProcess(home, tmp_path / "manager.log")
    manager.start()
    agent_home = enroll_agent_into(home, tmp_path / "agent", "vanishing")
    expected = write_trail_files(tmp_path / "trail", files=16, per_file=500)
    source = {"type": "directory", "name": "backfill", "path": str(tmp_path / "trail")}
    write_agent_toml(agent_home, home, [source])
    db_path = home.path / "manager.db"
    agent = AgentProcess(agent_home, tmp_path / "agent.log")
    try:
        for round_ in range(3):
            before = stored_count(db_path)
            agent.start()
            wait_until(
                lambda floor=before: stored_count(db_path) > floor,  # type: ignore[misc]
                60,
                f"streaming (round {round_})",
            )
            agent.kill()
            time.sleep(1.0)  # the abandoned analyses finish in the workers meanwhile
        agent.start()
        wait_until(lambda: stored_count(db_path) >= len(expected), 180, "every record")
        assert agent.terminate() == 0
        assert manager.terminate() == 0
    finally:
        stop_quietly(agent, manager)
    assert expected <= stored_ids(db_path)
    log = manager.log_path.read_text()
    assert "InvalidStateError" not in log
    assert "Traceback" not in log
