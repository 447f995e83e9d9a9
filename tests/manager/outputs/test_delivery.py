"""The delivery loop: an output fed from a real SQLite store by its delivered-cursor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.manager.store.factory import make_alert
from trailwarden.common.errors import OutputError
from trailwarden.manager.outputs.alerts_file import AlertsFile, AlertsFileConfig
from trailwarden.manager.outputs.delivery import Delivery
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database


def _store(tmp_path: Path) -> tuple[Database, SqliteAlertStore]:
    database = Database(tmp_path / "manager.db")
    return database, SqliteAlertStore(database)


def _ids(path: Path) -> list[str]:
    text = path.read_text()
    assert not text or text.endswith("\n")
    return [json.loads(line)["id"] for line in text.splitlines()]


def test_a_new_output_starts_at_the_stores_end_and_delivers_what_follows(tmp_path: Path) -> None:
    database, store = _store(tmp_path)
    store.commit([], [make_alert()])  # before the output existed: not its history
    delivery = Delivery(store, AlertsFile(tmp_path / "alerts"))
    delivery.prepare()
    later = [make_alert(), make_alert()]
    store.commit([], later)
    assert delivery.deliver_pending() == 2
    assert _ids(tmp_path / "alerts" / "alerts.json") == [a.id for a in later]
    assert store.output_cursor("alerts_file") == delivery.cursor > 0
    assert delivery.snapshot()["backlog"] == 0
    delivery.stop()
    database.close()


def test_a_crash_after_the_write_before_the_cursor_writes_nothing_twice(tmp_path: Path) -> None:
    """The file holds a page the cursor does not cover yet, and ends in a torn line."""
    database, store = _store(tmp_path)
    output = AlertsFile(tmp_path / "alerts")
    Delivery(store, output).prepare()
    alerts = [make_alert() for _ in range(5)]
    store.commit([], alerts)
    output.write(alerts[:3])  # delivered by a process that died before moving the cursor
    output.close()
    with output.path.open("ab") as handle:
        handle.write(b'{"timestamp":"2026-')  # and a torn line after them
    restarted = Delivery(store, AlertsFile(tmp_path / "alerts"))
    restarted.prepare()
    assert restarted.deliver_pending() == 2
    assert _ids(output.path) == [a.id for a in alerts]
    assert restarted.skipped_present == 3
    restarted.stop()
    database.close()


def test_a_failing_output_keeps_its_cursor_and_replays_later(tmp_path: Path) -> None:
    database, store = _store(tmp_path)
    blocker = tmp_path / "alerts"
    blocker.write_text("not a directory")  # the output cannot be opened
    delivery = Delivery(store, AlertsFile(blocker, AlertsFileConfig(min_level=5)))
    delivery.prepare()
    alerts = [make_alert(level=3), make_alert(level=9), make_alert(level=12)]
    store.commit([], alerts)
    with pytest.raises(OutputError, match="alerts"):
        delivery.deliver_pending()
    assert store.output_cursor("alerts_file") == 0
    assert delivery.snapshot()["backlog"] == 3
    blocker.unlink()  # room again
    assert delivery.deliver_pending() == 2  # below min_level is never written
    assert _ids(blocker / "alerts.json") == [alerts[1].id, alerts[2].id]
    delivery.stop()
    database.close()
