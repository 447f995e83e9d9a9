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

from tests.fixtures.system import CLI, ManagerHome, ManagerProcess, run_cli, wait_for_port
from trailwarden.agent.enroll import enroll
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.store.sqlite.database import Database


def enroll_agent(manager: ManagerProcess, tmp_path: Path, name: str = "crash-agent") -> Path:
    """A fresh agent home enrolled with the running manager process (a one-use token)."""
    database = Database(manager.home.path / "manager.db")
    token = Registry(database).create_token(600, 1, "", "test").token
    database.close()
    home = tmp_path / name
    enroll(home, manager.home.enroll_address, token, manager.home.ca_fingerprint, name)
    return home


def admin_sources(manager: ManagerHome) -> list[dict[str, Any]]:
    """Every source status the agents reported, as `trailwarden admin agents --json` shows it."""
    listed = run_cli(
        "admin", "agents", "--json", env={"TRAILWARDEN_CREDENTIALS": str(manager.credentials)}
    )
    assert listed.returncode == 0, listed.stderr
    return [
        source
        for agent in json.loads(listed.stdout)
        for source in ((agent.get("status_detail") or {}).get("sources") or [])
    ]


def admin_agents_table(manager: ManagerHome) -> str:
    """`trailwarden admin agents` as an admin reads it (the table and the problems under it)."""
    listed = run_cli("admin", "agents", env={"TRAILWARDEN_CREDENTIALS": str(manager.credentials)})
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def start_s3_agent(
    manager: ManagerProcess, tmp_path: Path, name: str, bucket: str, profile: Any, **extra: Any
) -> AgentProcess:
    """Start the manager process and an agent process (enrolled as ``name``, heartbeat 1 s)
    reading ``bucket`` through the moto ``profile`` from 2026-11-01 on; ``extra`` source keys."""
    manager.start()
    home = enroll_agent(manager, tmp_path, name)
    source = {
        "type": "cloudtrail",
        "name": "trail",
        "bucket": bucket,
        "aws_profile": profile.name,
        "service_endpoint": profile.endpoint,
        "only_logs_after": "2026-11-01",
        **extra,
    }
    write_agent_toml(home, manager.home, [source], heartbeat="1s")
    agent = AgentProcess(home, tmp_path / f"{name}.log")
    agent.start()
    return agent


def wait_for_source_count(manager: ManagerHome, counter: str, at_least: int) -> dict[str, Any]:
    """Wait until the agent's one source reports ``counter`` >= ``at_least`` to the manager
    (`admin agents --json`); its status then."""

    def reported() -> bool:
        sources = admin_sources(manager)
        return bool(sources) and int(sources[0].get(counter, 0)) >= at_least

    wait_until(reported, 30, f"{counter} >= {at_least} in admin agents")
    (status,) = admin_sources(manager)
    return status


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) so far, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


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


def enroll_agent_into(home: ManagerHome, folder: Path, name: str) -> Path:
    """Enroll an agent called ``name`` into ``folder`` through the real enrollment port."""
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
