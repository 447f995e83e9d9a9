"""Rule reload on a real manager process: ``trailwarden admin rules reload`` and SIGHUP.

A new ruleset is swapped in only if it loads cleanly (a broken one keeps the old one running and
the reasons are reported and audited), and the correlation window of a rule that persists
unchanged survives the reload: two failed logins before it and one after still make three.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.system import ManagerProcess, make_manager_home, run_cli, start_link
from tests.manager.analysis.helpers import record
from trailwarden.agent.enroll import enroll
from trailwarden.agent.spool import Spool
from trailwarden.common.model import SourceMeta
from trailwarden.common.tls import AdminBundle

pytestmark = pytest.mark.slow

SOURCE = SourceMeta("test", "trail", "AWSLogs/x.json.gz", "123456789012", "us-east-1")
FAILED_ID = "33333333-0000-0000-0000-000000000001"
BURST_ID = "33333333-0000-0000-0000-000000000002"
NEW_ID = "33333333-0000-0000-0000-000000000003"

FAILED = {
    "title": "Console login failed",
    "id": FAILED_ID,
    "name": "failed_login",
    "status": "test",
    "logsource": {"product": "aws", "service": "cloudtrail"},
    "detection": {
        "sel": {"eventName": "ConsoleLogin", "errorMessage": "Failed authentication"},
        "condition": "sel",
    },
    "level": "low",
}
BURST = {
    "title": "Three failed console logins in ten minutes",
    "id": BURST_ID,
    "status": "test",
    "correlation": {
        "type": "event_count",
        "rules": ["failed_login"],
        "group-by": ["userIdentity.userName"],
        "timespan": "10m",
        "condition": {"gte": 3},
        "generate": True,
    },
    "level": "high",
}
NEW = {
    "title": "Trail deleted",
    "id": NEW_ID,
    "status": "test",
    "logsource": {"product": "aws", "service": "cloudtrail"},
    "detection": {"sel": {"eventName": "DeleteTrail"}, "condition": "sel"},
    "level": "high",
}


def _write(path: Path, *docs: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


def _failed(n: int) -> bytes:
    rec = record(
        eventName="ConsoleLogin",
        eventSource="signin.amazonaws.com",
        errorMessage="Failed authentication",
        eventTime=f"2026-11-20T09:0{n}:00Z",
        eventID=f"00000000-0000-0000-0000-00000000010{n}",
    )
    return json.dumps(rec).encode()


def _alert_rules(home: Path) -> list[str]:
    db = sqlite3.connect(home / "manager.db")
    try:
        return [row[0] for row in db.execute("SELECT rule_id FROM alerts ORDER BY seq")]
    finally:
        db.close()


def _send(spool: Spool, *records: bytes) -> None:
    spool.put(SOURCE, list(records))
    deadline = time.monotonic() + 60
    while spool.stats().batches:
        assert time.monotonic() < deadline, "the manager did not acknowledge the batch"
        time.sleep(0.05)


def _reload(credentials: Path) -> tuple[int, dict[str, Any]]:
    done = run_cli("admin", "rules", "reload", "--json", "--credentials", str(credentials))
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_reload_by_command_and_sighup_keeps_windows_and_refuses_a_broken_ruleset(
    tmp_path: Path,
) -> None:
    home = make_manager_home(tmp_path / "manager", analysis_workers=2)
    rules = home.path / "rules"
    rules.mkdir()
    _write(rules / "logins.yml", FAILED, BURST)
    config = home.path / "manager.toml"
    config.write_text(config.read_text().replace("rules = []", 'rules = ["rules"]', 1))
    manager = ManagerProcess(home, tmp_path / "manager.log")
    manager.start()
    spool = Spool(tmp_path / "spool.db", 10 * 1024**2)
    agent_home = tmp_path / "agent"
    bundle = AdminBundle.load(home.credentials)
    assert bundle.address
    link = None
    try:
        token = run_cli(
            "admin", "token", "create", "--json", "--credentials", str(home.credentials)
        )
        enroll(
            agent_home,
            home.enroll_address,
            json.loads(token.stdout)["token"],
            home.ca_fingerprint,
            "reload-agent",
        )
        link = start_link(agent_home, home.link_address, spool, heartbeat_seconds=1)

        _send(spool, _failed(1), _failed(2))
        assert BURST_ID not in _alert_rules(home.path)

        # 1. A broken ruleset: refused, reasons reported, the old one keeps running.
        (rules / "broken.yml").write_text("title: x\nid: not-a-uuid\ndetection: [\n")
        code, broken = _reload(home.credentials)
        assert code == 1 and broken["ok"] is False
        assert any("broken.yml" in error for error in broken["errors"]), broken
        assert broken["rules"] > 2  # the old ruleset (shipped + 2 Sigma) still counted
        (rules / "broken.yml").unlink()

        # 2. A good one, by command: the new rule runs, the window of the unchanged burst
        #    rule is kept (two logins before, one after: three).
        _write(rules / "trail.yml", NEW)
        code, reloaded = _reload(home.credentials)
        assert code == 0 and reloaded["ok"] is True, reloaded
        assert reloaded["sigma_rules"] == 3
        _send(spool, _failed(3))
        assert _alert_rules(home.path).count(BURST_ID) == 1

        # 3. SIGHUP: the file removed again, the rule no longer fires.
        (rules / "trail.yml").unlink()
        assert manager.proc is not None
        manager.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while True:
            log_text = (tmp_path / "manager.log").read_text()
            if (
                "received SIGHUP" in log_text
                and "ruleset reloaded: " in log_text.split("received SIGHUP", 1)[1]
            ):
                break
            assert time.monotonic() < deadline, "SIGHUP did not reload the ruleset"
            time.sleep(0.1)
        trail = record(
            eventName="DeleteTrail",
            eventSource="cloudtrail.amazonaws.com",
            eventID="00000000-0000-0000-0000-000000000201",
        )
        _send(spool, json.dumps(trail).encode())
        assert NEW_ID not in _alert_rules(home.path)

        audit = run_cli("admin", "audit", "--json", "--credentials", str(home.credentials))
        actions = [entry["action"] for entry in json.loads(audit.stdout)]
        assert actions.count("rules.reload") == 2
    finally:
        if link is not None:
            link.close()
        spool.close()
        assert manager.terminate() == 0


def test_a_manager_whose_rules_load_nothing_refuses_to_start(tmp_path: Path) -> None:
    home = make_manager_home(tmp_path / "manager")
    empty = home.path / "rules"
    empty.mkdir()
    config = home.path / "manager.toml"
    text = config.read_text().replace("default_rules = true", "default_rules = false", 1)
    config.write_text(text.replace("rules = []", 'rules = ["rules"]', 1))
    done = run_cli("manager", "run", "--home", str(home.path), timeout=60)
    assert done.returncode != 0
    assert "directory holds no rule files" in done.stderr + done.stdout
