"""Real agent processes for crash tests: config, records on disk, and what the manager stored."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fixtures.system import CLI, ManagerHome, ManagerProcess, wait_for_port


def write_agent_toml(
    home: Path,
    manager: ManagerHome,
    sources: list[dict[str, Any]],
    *,
    spool_limit: str = "1GiB",
    heartbeat: str = "2s",
) -> None:
    """Replace the agent.toml that enrollment wrote: these sources, this spool limit."""
    lines = [
        "[agent]",
        f'name = "{home.name}"',
        'log_level = "INFO"',
        f'heartbeat = "{heartbeat}"',
        "[manager]",
        f'address = "{manager.link_address}"',
        'server_name = "localhost"',
        "[spool]",
        f'limit = "{spool_limit}"',
    ]
    for source in sources:
        lines.append("[[sources]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in source.items()]
    (home / "agent.toml").write_text("\n".join(lines) + "\n")


def write_trail_files(folder: Path, files: int, per_file: int, *, pad: int = 0) -> set[str]:
    """``files`` CloudTrail files of ``per_file`` records (root console logins, which alert);
    returns every eventID written."""
    folder.mkdir(parents=True, exist_ok=True)
    ids: set[str] = set()
    for number in range(files):
        records = []
        for _ in range(per_file):
            event_id = str(uuid.uuid4())
            ids.add(event_id)
            records.append(
                {
                    "eventVersion": "1.08",
                    "eventID": event_id,
                    "eventTime": "2026-11-01T10:00:00Z",
                    "eventSource": "signin.amazonaws.com",
                    "eventName": "ConsoleLogin",
                    "awsRegion": "us-east-1",
                    "recipientAccountId": "111122223333",
                    "sourceIPAddress": "203.0.113.9",
                    "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"},
                    "responseElements": {"ConsoleLogin": "Success"},
                    "additionalEventData": {"MFAUsed": "Yes"},
                    **({"requestParameters": {"pad": "p" * pad}} if pad else {}),
                }
            )
        (folder / f"trail-{number:04d}.json").write_text(json.dumps({"Records": records}))
    return ids


class AgentProcess:
    """`trailwarden agent run --home` as a subprocess, logging to ``log_path``."""

    def __init__(self, home: Path, log_path: Path) -> None:
        self.home = home
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, preexec: Callable[[], None] | None = None, *, debug: bool = False) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, *(["--debug"] if debug else []), "agent", "run", "--home", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
                preexec_fn=preexec,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    if not database.exists():
        return []
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        conn.close()


def stored_ids(database: Path) -> set[str]:
    """eventIDs the manager has committed (its dedupe table)."""
    return {row[0] for row in _query(database, "SELECT event_key FROM seen_events")}


def stored_count(database: Path) -> int:
    rows = _query(database, "SELECT COUNT(*) FROM seen_events")
    return int(rows[0][0]) if rows else 0


def alert_counts(database: Path) -> Counter[tuple[str, str]]:
    """(eventID, rule) -> alerts stored for it."""
    rows = _query(database, "SELECT event_id, rule_id FROM alerts")
    return Counter((str(e), str(r)) for e, r in rows)


def spool_state(spool: Path) -> tuple[int, int]:
    """(batches, bytes) waiting in an agent's spool."""
    rows = _query(spool, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM spool_batches")
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def files_taken(spool: Path) -> int:
    rows = _query(spool, "SELECT COUNT(*) FROM dir_files")
    return int(rows[0][0]) if rows else 0


def new_token(home: ManagerHome, for_agent: str = "") -> str:
    """A one-use enrollment token straight from the manager's registry (no admin round trip)."""
    from trailwarden.manager.agents.registry import Registry
    from trailwarden.manager.store.sqlite.database import Database

    database = Database(home.path / "manager.db")
    try:
        return Registry(database).create_token(600, 1, "", "test", for_agent).token
    finally:
        database.close()


def enroll_agent(home: ManagerHome, folder: Path, name: str) -> Path:
    """Enroll an agent called ``name`` into ``folder`` through the real enrollment port."""
    from trailwarden.agent.enroll import enroll

    enroll(folder, home.enroll_address, new_token(home), home.ca_fingerprint, name)
    return folder


def stop_quietly(agent: AgentProcess, manager: ManagerProcess) -> None:
    """Test teardown: SIGKILL whichever of the two is still running."""
    agent.stop_quietly()
    if manager.proc is not None and manager.proc.poll() is None:
        manager.proc.kill()
        manager.proc.wait(10)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class LimitedManager(ManagerProcess):
    """`trailwarden manager run` with a ``preexec`` hook (rlimits) for disk-failure tests."""

    def __init__(self, home: ManagerHome, log_path: Path, preexec: Callable[[], None]) -> None:
        super().__init__(home, log_path)
        self.preexec = preexec

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "manager", "run", "--home", str(self.home.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec,
            )
        wait_for_port(self.home.link_port)
        wait_for_port(self.home.enroll_port)
