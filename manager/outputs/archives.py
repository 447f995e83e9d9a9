"""archives.json: every analysed event, alert or not (Wazuh's ``logall_json``).

Where it is written from, so that nothing is lost and nothing doubled: the store already keeps
every new event in its ``archive`` table, in the same transaction as the batch's alerts and
dedupe keys, before the batch is acknowledged (``[store] archive``). The archives file is fed
from that table by the delivery loop with a delivered-cursor of its own (``archives``), exactly
as alerts.json is fed from the alerts: an event is in the file once it is committed, a full disk
or a crash only delays it, a duplicate record never reaches it (dedupe came first), and
``recover`` reads the file's last line so a crash after a write does not write it twice.
``[archives] enabled = true`` therefore turns the store's archive on; its retention
(``[store.retention] archive_days``) only bounds how long the table keeps what the file
already has.

Each line is Wazuh's archive shape for an event: ``timestamp`` (when the manager committed
it), ``agent{id}``, ``manager{name}``, ``id`` (the archive cursor), ``full_log`` (the CloudTrail
record exactly as received), ``decoder{name: json}``, ``location`` (bucket/key). The file
lives beside alerts.json (``alerts/archives.json``) and rotates the same way, by the same
code (``alerts_file.AlertsFile`` with the ``archives`` stem); rotated files are gzipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from trailwarden.manager.analysis.alert import wazuh_timestamp
from trailwarden.manager.outputs.alerts_file import AlertsFile, AlertsFileConfig
from trailwarden.manager.outputs.config import ARCHIVES_NAME, ArchivesConfig
from trailwarden.manager.store.base import AlertStore, ArchivedEvent

OUTPUT_NAME = ARCHIVES_NAME
"""The archives file's delivered-cursor name in the store."""
STEM = "archives"


def archive_line(event: ArchivedEvent, manager_name: str) -> str:
    document = {
        "timestamp": wazuh_timestamp(event.timestamp),
        "agent": {"id": event.agent_id},
        "manager": {"name": manager_name},
        "id": event.id,
        "full_log": event.raw.decode("utf-8", "replace"),
        "decoder": {"name": "json"},
        "location": event.location,
    }
    return orjson.dumps(document).decode()


class ArchivesFile:
    """An ``Output`` of archived events: appends their lines to ``<directory>/archives.json``."""

    name = OUTPUT_NAME
    min_level = 0

    def __init__(self, directory: Path, config: ArchivesConfig, manager_name: str) -> None:
        self.manager_name = manager_name
        self.file = AlertsFile(
            directory,
            AlertsFileConfig(max_bytes=config.max_bytes),
            stem=STEM,
            compress=config.compress,
        )

    @property
    def path(self) -> Path:
        return self.file.path

    def recover(self) -> str:
        return self.file.recover()

    def deliver(self, batch: Sequence[ArchivedEvent]) -> None:
        self.file.append_lines([archive_line(e, self.manager_name) for e in batch])

    def close(self) -> None:
        self.file.close()


def archive_feed(
    store: AlertStore, page: int
) -> Callable[[int | None], tuple[Sequence[ArchivedEvent], int]]:
    """The delivery loop's feed of archived events."""
    return lambda cursor: store.follow_archive(cursor, page)
