"""A real manager process on the PostgreSQL store, end to end: `manager init --store URL`, an
agent process sends CloudTrail records, the alerts land in PostgreSQL (not in manager.db),
`admin alerts` and `admin stats` return them, and after a restart a resend stores nothing twice.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from tests.fixtures.system import CLI, ManagerProcess, make_manager_home, run_cli
from tests.reliability.processes import (
    enroll_agent,
    wait_until,
    write_agent_toml,
    write_trail_files,
)

RECORDS = 240


def _pg_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _admin(home: Any, *args: str) -> Any:
    done = run_cli("admin", *args, "--json", env={"TRAILWARDEN_CREDENTIALS": str(home.credentials)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _run_agent_once(agent_home: Path) -> None:
    done = run_cli("agent", "run", "--once", "--home", str(agent_home), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_manager_runs_on_postgres_and_keeps_dedupe_across_a_restart(
    tmp_path: Path, postgres_url: str
) -> None:
    home = make_manager_home(tmp_path / "manager", analysis_workers=2, store_url=postgres_url)
    toml = (home.path / "manager.toml").read_text()
    assert f"url = {json.dumps(postgres_url)}" in toml
    assert (home.path / "manager.toml").stat().st_mode & 0o077 == 0
    manager = ManagerProcess(home, tmp_path / "manager.log")
    manager.start()
    try:
        agent = enroll_agent(manager, tmp_path)
        expected = write_trail_files(tmp_path / "trail", files=4, per_file=RECORDS // 4)
        source = {"type": "directory", "name": "trail", "path": str(tmp_path / "trail")}
        write_agent_toml(agent, home, [source])
        _run_agent_once(agent)
        wait_until(lambda: _pg_count(postgres_url, "seen_events") >= RECORDS, 60, "events")
        stored = _pg_count(postgres_url, "alerts")
        assert stored >= RECORDS  # every record is a root console login: at least one alert

        alerts = _admin(home, "alerts", "--all", "--from", "2026-10-01")
        assert len(alerts) == stored
        assert {a["event_id"] for a in alerts} == expected
        assert {a["alert"]["data"]["aws"]["eventID"] for a in alerts} == expected
        stats = _admin(home, "stats", "--by", "rule", "--from", "2026-10-01")
        assert stats["total"] == stored
        assert sum(b["count"] for b in stats["buckets"]) == stored

        # Restart the manager, then send the very same records again (a second source over a
        # copy of the files: the agent's checkpoint does not know them).
        assert manager.terminate() == 0
        manager.start()
        shutil.copytree(tmp_path / "trail", tmp_path / "again")
        again = {"type": "directory", "name": "again", "path": str(tmp_path / "again")}
        write_agent_toml(agent, home, [source, again])
        _run_agent_once(agent)
        after = _admin(home, "alerts", "--all", "--from", "2026-10-01")
        assert len(after) == stored, "a resend after the restart stored alerts twice"
        assert _pg_count(postgres_url, "alerts") == stored
        assert _pg_count(postgres_url, "seen_events") == RECORDS
        assert manager.terminate() == 0
    finally:
        if manager.proc is not None and manager.proc.poll() is None:
            manager.proc.kill()
            manager.proc.wait(10)
    log = (tmp_path / "manager.log").read_text()
    assert "PostgreSQL" in log and "alerts schema v1" in log
    # The alerts live in PostgreSQL; the manager's SQLite file holds no alert table at all.
    with sqlite3.connect(home.path / "manager.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "alerts" not in tables and "agents" in tables


def test_init_with_an_unreachable_store_writes_nothing_and_hides_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://tw:s3cr3t-pw@127.0.0.1:1/trailwarden"
    done = subprocess.run(
        [*CLI, "manager", "init", "--home", str(tmp_path / "m"), "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "127.0.0.1" in done.stderr and "PostgreSQL" in done.stderr
    assert "s3cr3t-pw" not in done.stderr + done.stdout
    assert not (tmp_path / "m" / "manager.toml").exists()
