"""The alerts file: ``<home>/alerts/alerts.json``, one alert per line in Wazuh's shape.

Each line is ``Alert.to_wazuh()`` — ``timestamp``, ``rule{id,level,description,groups,mitre,
firedtimes}``, ``agent{id,name}``, ``manager{name}``, ``id``, ``decoder{name}``, ``location``,
``data{...}`` — so a Filebeat, Vector or Fluent Bit pipeline built for Wazuh's
``/var/ossec/logs/alerts/alerts.json`` reads it unchanged.

Rotation follows Wazuh's layout under the alerts directory, by renaming (shippers follow the
file by inode, so nothing is lost across a rename):

- **daily**: when the first alert of a new UTC day arrives, the live file becomes
  ``<YYYY>/<Mon>/alerts-<DD>.json`` for the day it was written (e.g. ``2026/Nov/alerts-26.json``);
- **by size**: when appending would take the live file past ``max_bytes``, it becomes
  ``<YYYY>/<Mon>/alerts-<DD>-<NNN>.json`` (001, 002, ...).

So one day's alerts, in order, are ``alerts-26-001.json``, ``alerts-26-002.json``, ...,
``alerts-26.json``. A line is never split across files. The file is opened for append; a manager
restart continues it (and rotates it first if it was last written on an earlier day).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from trailwarden.common.errors import ConfigError, StoreError
from trailwarden.common.timeparse import utc_now
from trailwarden.manager.analysis.alert import Alert

log = logging.getLogger(__name__)

LIVE_NAME = "alerts.json"
DEFAULT_MAX_BYTES = 256 * 1024**2
"""Size rotation threshold of the live file."""
FILE_MODE = 0o640
"""Alerts describe an estate's activity: readable by the manager and its group (the shipper)."""
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class AlertsFileConfig:
    """``[outputs.alerts_file]`` in manager.toml."""

    enabled: bool = True
    """Write the alerts file at all."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Rotate the live file before it would grow past this many bytes."""
    min_level: int = 0
    """Only alerts at this level or above go to the file (Wazuh's ``log_alert_level``)."""

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], origin: str = "[outputs.alerts_file]"
    ) -> AlertsFileConfig:
        """From a manager.toml table; unknown keys and wrong types are refused naming ``origin``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{origin}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{origin}.enabled: must be true or false, not {enabled!r}")
        values: dict[str, Any] = {"enabled": enabled}
        for key, low in (("max_bytes", 1), ("min_level", 0)):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ConfigError(f"{origin}.{key}: must be an integer >= {low}, not {value!r}")
                values[key] = value
        return cls(**values)


def rotated_path(directory: Path, day: date, part: int = 0) -> Path:
    """Where a rotated file of ``day`` goes: part 0 is the day's last file, 1.. size rotations."""
    suffix = f"-{part:03d}" if part else ""
    return (
        directory
        / f"{day.year:04d}"
        / _MONTHS[day.month - 1]
        / f"alerts-{day.day:02d}{suffix}.json"
    )


class AlertsFile:
    """Appends alerts as JSON lines to ``<directory>/alerts.json`` and rotates it.

    Thread-safe: one lock around write and rotation. Write failures (disk full, permissions)
    raise StoreError naming the file.
    """

    def __init__(
        self,
        directory: Path,
        config: AlertsFileConfig | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.directory = Path(directory)
        self.config = config or AlertsFileConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._handle: BinaryIO | None = None
        self._size = 0
        self._day: date | None = None

    @property
    def path(self) -> Path:
        """The live file."""
        return self.directory / LIVE_NAME

    def write(self, alerts: Sequence[Alert]) -> int:
        """Append the alerts at or above ``min_level``; returns how many lines were written."""
        if not self.config.enabled:
            return 0
        lines = [a.document() for a in alerts if a.rule.level >= self.config.min_level]
        if not lines:
            return 0
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            try:
                today = self._clock().astimezone(UTC).date()
                handle = self._open()
                if self._size and self._day is not None and self._day != today:
                    handle = self._rotate(self._day, daily=True)
                if self._size and self._size + len(data) > self.config.max_bytes:
                    handle = self._rotate(today, daily=False)
                if not self._size:
                    self._day = today
                handle.write(data)
                handle.flush()
                self._size += len(data)
            except OSError as exc:
                self._close_handle()
                raise StoreError(f"alerts file {self.path}: write failed: {exc}") from exc
        return len(lines)

    def close(self) -> None:
        with self._lock:
            self._close_handle()

    # ---- internals (called with the lock held) ---------------------------------------------

    def _open(self) -> BinaryIO:
        if self._handle is not None:
            return self._handle
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        handle = os.fdopen(fd, "ab")
        stat = os.fstat(fd)
        self._size = stat.st_size
        # A file left by an earlier run belongs to the day it was last written.
        self._day = datetime.fromtimestamp(stat.st_mtime, tz=UTC).date() if self._size else None
        self._handle = handle
        return handle

    def _rotate(self, day: date, *, daily: bool) -> BinaryIO:
        self._close_handle()
        part = 0 if daily else 1
        target = rotated_path(self.directory, day, part)
        while target.exists():  # a restarted day, or the day file already taken: number on
            part += 1
            target = rotated_path(self.directory, day, part)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        log.info(
            "stage=output alerts file rotated (%s) to %s", "daily" if daily else "size", target
        )
        return self._open()

    def _close_handle(self) -> None:
        if self._handle is not None:
            try:
                self._handle.close()
            finally:
                self._handle = None
                self._size = 0
                self._day = None
