"""archives.json: every committed event, alert or not, once, in order, rotated and gzipped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from tests.manager.store.factory import event_for, make_alert
from trailwarden.manager.outputs.archives import ArchivesFile, archive_feed
from trailwarden.manager.outputs.config import ArchivesConfig
from trailwarden.manager.outputs.delivery import PAGE, Delivery
from trailwarden.manager.store.base import ArchivedEvent, EventRow
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database


def event(n: int, agent: str = "agent-7") -> EventRow:
    raw = json.dumps({"eventID": f"e-{n:04d}", "eventName": "DescribeInstances", "n": n})
    return EventRow(
        event_key=f"e-{n:04d}",
        recipient_account="111111111111",
        agent_id=agent,
        event_time="2026-11-20T11:00:00Z",
        location=f"trail-bucket/AWSLogs/111111111111/CloudTrail/us-east-1/f{n}.json.gz",
        raw=raw.encode(),
    )


def archiving_store(tmp_path: Path) -> tuple[Database, SqliteAlertStore]:
    database = Database(tmp_path / "manager.db")
    return database, SqliteAlertStore(database, archive=True)


def archives(
    store: SqliteAlertStore, directory: Path, config: ArchivesConfig | None = None
) -> Delivery[ArchivedEvent]:
    output = ArchivesFile(directory, config or ArchivesConfig(enabled=True), "manager-1")
    delivery = Delivery(store, output, feed=archive_feed(store, PAGE))
    delivery.prepare()
    return delivery


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert not text or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_every_event_alert_or_not_is_one_line_in_wazuh_archive_shape(tmp_path: Path) -> None:
    database, store = archiving_store(tmp_path)
    delivery = archives(store, tmp_path / "alerts")
    quiet = [event(1), event(2)]
    alert = make_alert(level=9)
    loud = event_for(alert, raw=b'{"eventID":"loud","eventName":"StopLogging"}')
    store.commit([*quiet, loud], [alert])
    assert delivery.deliver_pending() == 3
    written = lines(tmp_path / "alerts" / "archives.json")
    assert [json.loads(w["full_log"]).get("n") for w in written] == [1, 2, None]
    assert json.loads(written[2]["full_log"])["eventName"] == "StopLogging"
    first = written[0]
    assert set(first) == {"timestamp", "agent", "manager", "id", "full_log", "decoder", "location"}
    assert first["agent"] == {"id": "agent-7"} and first["manager"] == {"name": "manager-1"}
    assert first["decoder"] == {"name": "json"}
    assert first["location"].endswith("/f1.json.gz")
    assert first["timestamp"].endswith("+0000")
    # A resent batch (the agent did not see the ack) is not archived twice.
    store.commit([*quiet, event(3)], [])
    assert delivery.deliver_pending() == 1
    assert [json.loads(w["full_log"]).get("n") for w in lines(delivery.output.path)] == [
        1,
        2,
        None,
        3,
    ]
    delivery.stop()
    database.close()


def test_a_crash_after_the_write_before_the_cursor_writes_nothing_twice(tmp_path: Path) -> None:
    database, store = archiving_store(tmp_path)
    archives(store, tmp_path / "alerts").stop()  # the cursor exists, at the archive's end
    store.commit([event(n) for n in range(5)], [])
    dead = ArchivesFile(tmp_path / "alerts", ArchivesConfig(enabled=True), "manager-1")
    found, _ = store.follow_archive(0, 3)
    dead.deliver(found)  # written by a manager that died before moving the cursor
    dead.close()
    with (tmp_path / "alerts" / "archives.json").open("ab") as handle:
        handle.write(b'{"timestamp":"2026-')  # and a torn line after them
    restarted = archives(store, tmp_path / "alerts")
    assert restarted.deliver_pending() == 2
    assert restarted.skipped_present == 3
    written = lines(tmp_path / "alerts" / "archives.json")
    assert [json.loads(w["full_log"])["n"] for w in written] == [0, 1, 2, 3, 4]
    restarted.stop()
    database.close()


def test_rotation_by_size_gzips_the_rotated_files_and_loses_no_line(tmp_path: Path) -> None:
    database, store = archiving_store(tmp_path)
    one_line = len(json.dumps({"x": "y" * 400}))
    delivery = archives(
        store, tmp_path / "alerts", ArchivesConfig(enabled=True, max_bytes=one_line * 3)
    )
    for n in range(12):  # one commit and delivery each: the file grows line by line
        store.commit([event(n)], [])
        delivery.deliver_pending()
    delivery.stop()
    rotated = sorted((tmp_path / "alerts").glob("*/*/archives-*.json.gz"))
    assert len(rotated) >= 2
    assert not list((tmp_path / "alerts").glob("*/*/archives-*.json"))  # all compressed
    assert not list((tmp_path / "alerts").glob("*/*/*.partial"))
    numbers = []
    for path in rotated:
        text = gzip.decompress(path.read_bytes()).decode()
        assert text.endswith("\n")
        numbers += [json.loads(json.loads(line)["full_log"])["n"] for line in text.splitlines()]
    numbers += [
        json.loads(w["full_log"])["n"] for w in lines(tmp_path / "alerts" / "archives.json")
    ]
    assert numbers == list(range(12))
    database.close()
