"""Records → agent → link → manager analysis → alert store → Admin API, all real parts."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.system import RunningManager, run_cli
from trailwarden.agent.config import load_agent_config
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.runner import AgentRunner

EVENTS = Path(__file__).resolve().parents[1] / "files" / "events"
DOCUMENTED = {"80202", "80203", "80250", "80253", "80254", "80255"}


def _add_directory_source(home: Path, folder: Path) -> None:
    config = home / "agent.toml"
    config.write_text(
        config.read_text()
        + f"""
[[sources]]
type = "directory"
name = "events"
path = "{folder}"
"""
    )


def test_documented_alerts_through_a_running_manager(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> None:
    home = enrolled_agent("web-1")
    folder = tmp_path / "events"
    shutil.copytree(EVENTS, folder)
    _add_directory_source(home, folder)
    runner = AgentRunner(load_agent_config(home), AgentIdentity.load(home))
    result = runner.run_once()
    assert result.failed == 0 and result.records >= 28

    env = {"TRAILWARDEN_CREDENTIALS": str(running_manager.home.credentials)}
    listed = run_cli("admin", "alerts", "--limit", "500", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    alerts = json.loads(listed.stdout)
    fired = {a["rule"]["id"] if isinstance(a.get("rule"), dict) else a["rule_id"] for a in alerts}
    assert fired >= DOCUMENTED, f"missing {DOCUMENTED - fired}"
    agents = {
        a["agent"]["id"] if isinstance(a.get("agent"), dict) else a["agent_id"] for a in alerts
    }
    assert agents == {AgentIdentity.load(home).agent_id}

    # A second pass over the same files (e.g. the agent lost its checkpoints) stores nothing
    # twice: the manager drops the duplicates by eventID before the rules see them.
    (home / "spool.db").unlink()
    for leftover in home.glob("spool.db-*"):
        leftover.unlink()
    again = AgentRunner(load_agent_config(home), AgentIdentity.load(home)).run_once()
    assert again.records == result.records
    db = sqlite3.connect(running_manager.home.path / "manager.db")
    dup = db.execute(
        "SELECT event_id, rule_id, COUNT(*) FROM alerts GROUP BY event_id, rule_id"
        " HAVING COUNT(*) > 1"
    ).fetchall()
    db.close()
    assert dup == []
    relisted = json.loads(run_cli("admin", "alerts", "--limit", "500", "--json", env=env).stdout)
    assert len(relisted) == len(alerts)
