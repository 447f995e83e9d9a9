"""A real manager configured with [[outputs]] and [archives]: what it ingests reaches a real local
webhook once, archives.json has every event, and a restart sends nothing again."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures.system import make_manager_home
from tests.manager.outputs.receivers import HttpReceiver, wait_until
from trailwarden.common.logfile import read_file
from trailwarden.common.model import AgentRef, RecordBatch, SourceMeta
from trailwarden.manager.server import BackgroundManager, ManagerServer

EVENTS = Path(__file__).resolve().parents[2] / "files" / "events"
AGENT = AgentRef("a1", "web-1")


def records(*names: str) -> tuple[bytes, ...]:
    return tuple(r.raw for name in names for r in read_file(str(EVENTS / name)).records)


def configure(home: Path, receiver: HttpReceiver) -> None:
    config = home / "manager.toml"
    text = config.read_text()
    legacy = re.compile(r"^\[outputs\]\n(?:[^\[\n].*\n)*", re.M)
    assert legacy.search(text), "manager init writes the [outputs] table"
    entries = f"""[[outputs]]
type = "alerts_file"
min_level = 4

[[outputs]]
type = "webhook"
name = "soc-hook"
url = "{receiver.url}"
min_level = 4
retry_initial_seconds = 0.05
retry_max_seconds = 0.2

"""
    archives = re.compile(r"^(\[archives\].*\n)enabled = false", re.M)
    assert archives.search(text), "manager init writes [archives] enabled = false"
    text = archives.sub(r"\1enabled = true", legacy.sub(entries, text))
    config.write_text(text)


@contextmanager
def running(home: Path, *batches: tuple[bytes, ...]) -> Iterator[ManagerServer]:
    """A manager on ``home`` that has ingested ``batches``; stopped (drained) on exit."""
    background = BackgroundManager(home)
    server = background.start()
    try:
        for sequence, batch in enumerate(batches, 1):
            server.ingest.process(AGENT, RecordBatch(sequence, SourceMeta("t"), batch))
        yield server
    finally:
        background.stop()


def stored_alerts(home: Path, min_level: int) -> list[str]:
    db = sqlite3.connect(home / "manager.db")
    try:
        rows = db.execute(
            "SELECT alert_id FROM alerts WHERE level >= ? ORDER BY seq", (min_level,)
        ).fetchall()
    finally:
        db.close()
    return [row[0] for row in rows]


def test_outputs_from_manager_toml_deliver_once_across_a_restart(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    home = make_manager_home(tmp_path / "m")
    receiver.open()
    configure(home.path, receiver)
    first = records("ec2-run-instances.json", "cloudtrail-stop-logging.json")
    with running(home.path, first) as server:
        wanted = stored_alerts(home.path, 4)
        assert wanted, "the sample records raise alerts at level 4 or above"
        bodies = receiver.wait_for(len(wanted))
        wait_until(lambda: server.counters.snapshot()["outputs"]["archives"]["backlog"] == 0)
        state = server.counters.snapshot()["outputs"]
        assert state["soc-hook"]["delivered"] >= len(wanted)
        assert set(state) == {"alerts_file", "soc-hook", "archives"}
    assert [b["id"] for b in bodies] == wanted
    alerts_dir = home.path / "alerts"
    archived = [
        json.loads(line) for line in (alerts_dir / "archives.json").read_text().splitlines()
    ]
    assert sorted(a["full_log"].encode() for a in archived) == sorted(first)  # alert or not
    in_file = [
        json.loads(line)["id"] for line in (alerts_dir / "alerts.json").read_text().splitlines()
    ]
    assert in_file == wanted  # the alerts_file entry's min_level, not the archive's every event

    # Restart: the cursors were saved, nothing is sent again; the new batch's alerts are.
    second = records("iam-create-user.json", "guardduty-delete-detector.json")
    with running(home.path, second) as server:
        now_wanted = stored_alerts(home.path, 4)
        assert len(now_wanted) > len(wanted)
        receiver.wait_for(len(now_wanted))
        wait_until(lambda: server.counters.snapshot()["outputs"]["archives"]["backlog"] == 0)
    assert [b["id"] for b in receiver.accepted_bodies()] == now_wanted  # each once, in order
    archived = (alerts_dir / "archives.json").read_text().splitlines()
    assert len(archived) == len(first) + len(second)


def test_alerts_of_a_restart_during_an_outage_arrive_once_in_order(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    """Receiver down; the manager ingests, stops (its last pass fails too), starts again and
    ingests more; then the receiver comes up: both batches' alerts, each once, in order."""
    home = make_manager_home(tmp_path / "m")
    # The receiver's port is closed until receiver.open().
    configure(home.path, receiver)
    with running(home.path, records("cloudtrail-stop-logging.json")) as server:
        wait_until(lambda: server.counters.snapshot()["outputs"]["soc-hook"]["failures"] >= 2)
    waiting = stored_alerts(home.path, 4)
    assert receiver.requests == [] and waiting
    with running(home.path, records("iam-create-user.json", "guardduty-delete-detector.json")):
        wanted = stored_alerts(home.path, 4)
        assert len(wanted) > len(waiting)
        receiver.open()
        receiver.wait_for(len(wanted))
    assert [b["id"] for b in receiver.accepted_bodies()] == wanted
