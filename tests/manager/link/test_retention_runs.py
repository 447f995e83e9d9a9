"""The running manager applies retention on its own (no admin action needed)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fixtures.system import make_manager_home
from trailwarden.common.model import AgentRef
from trailwarden.common.timeparse import to_rfc3339
from trailwarden.manager.analysis.alert import Alert, RuleHit
from trailwarden.manager.server import BackgroundManager
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database


def _alert(alert_id: str, when: datetime) -> Alert:
    stamp = to_rfc3339(when)
    return Alert(
        id=alert_id,
        timestamp=stamp,
        rule=RuleHit("80202", 3, "old"),
        agent=AgentRef("a1", "web-1"),
        manager_name="m",
        location="b/k",
        data={},
        event_id=f"event-{alert_id}",
        recipient_account="111122223333",
        event_time=stamp,
    )


def test_running_manager_prunes_old_alerts(tmp_path: Path) -> None:
    home = make_manager_home(tmp_path / "m")
    config = home.path / "manager.toml"
    config.write_text(
        config.read_text() + '\n[store.retention]\nalerts_days = 1\ninterval = "1s"\n'
    )
    database = Database(home.path / "manager.db")
    store = SqliteAlertStore(database)
    now = datetime.now(UTC)
    store.commit([], [_alert("1.1", now - timedelta(days=3)), _alert("1.2", now)])
    store.close()
    database.close()

    background = BackgroundManager(home.path)
    background.start()
    try:
        db = sqlite3.connect(home.path / "manager.db", timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1:
                break
            time.sleep(0.2)
        remaining = db.execute("SELECT event_id FROM alerts").fetchall()
        db.close()
    finally:
        background.stop()
    assert remaining == [("event-1.2",)]
