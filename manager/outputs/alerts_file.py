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

The same code writes ``archives.json`` (``archives.py``: the ``archives`` stem, rotated files
gzipped to ``archives-<DD>[-NNN].json.gz`` after the rename).

The file is an ``Output`` of the delivery loop (``delivery.py``), which feeds it from the store
after the commit: each ``deliver`` appends whole lines and fsyncs before the loop moves the
cursor. A write that fails (disk full) is cut back to the last whole line at once; ``recover``
(on open, and after every failure) truncates a torn tail a crash left and names the last alert
the file holds, so the loop never writes that alert, or any before it, twice.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from trailwarden.common.errors import ConfigError, OutputError
from trailwarden.common.timeparse import utc_now
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.store.base import StoredAlert

log = logging.getLogger(__name__)

LIVE_NAME = "alerts.json"
OUTPUT_NAME = "alerts_file"
"""The file's delivered-cursor name in the store."""
TAIL_READ_BYTES = 1024 * 1024
"""How far back from the end ``recover`` looks for the last whole line (an alert is far smaller)."""
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


def rotated_path(directory: Path, day: date, part: int = 0, stem: str = "alerts") -> Path:
    """Where a rotated file of ``day`` goes: part 0 is the day's last file, 1.. size rotations."""
    suffix = f"-{part:03d}" if part else ""
    return (
        directory
        / f"{day.year:04d}"
        / _MONTHS[day.month - 1]
        / f"{stem}-{day.day:02d}{suffix}.json"
    )


def _taken(target: Path) -> bool:
    return target.exists() or target.with_name(target.name + ".gz").exists()


def compress_rotated(path: Path) -> Path:
    """gzip a rotated file beside itself (``.json.gz``) and remove it; on failure the file
    stays as it is (logged), so nothing is lost. Written under a temporary name first, so a
    crash never leaves a truncated ``.gz`` under the final name."""
    target = path.with_name(path.name + ".gz")
    partial = path.with_name(path.name + ".gz.partial")
    try:
        with path.open("rb") as source, gzip.open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        os.chmod(partial, FILE_MODE)
        os.replace(partial, target)
        path.unlink()
    except OSError as exc:
        log.warning("stage=output cannot compress %s (left uncompressed): %s", path, exc)
        partial.unlink(missing_ok=True)
        return path
    return target


class AlertsFile:
    """Appends alerts as JSON lines to ``<directory>/alerts.json`` and rotates it.

    Thread-safe: one lock around write and rotation. Write failures (disk full, permissions)
    raise OutputError naming the file, after cutting the file back to its last whole line.
    """

    name = OUTPUT_NAME

    def __init__(
        self,
        directory: Path,
        config: AlertsFileConfig | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        stem: str = "alerts",
        compress: bool = False,
    ) -> None:
        """``stem`` names the live file (``<stem>.json``) and its rotations; ``compress`` gzips
        each rotated file (the archives file uses both: ``archives.json``, ``.json.gz``)."""
        self.directory = Path(directory)
        self.config = config or AlertsFileConfig()
        self.stem = stem
        self.compress = compress
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._day: date | None = None

    @property
    def path(self) -> Path:
        """The live file."""
        return self.directory / f"{self.stem}.json"

    @property
    def min_level(self) -> int:
        """Alerts below this level are not written (the delivery loop does not read them)."""
        return self.config.min_level

    def recover(self) -> str:
        """Truncate a torn last line (a crash mid-write) and return the ``id`` of the last whole
        line the live file holds ('' if it holds none or that line is not an alert)."""
        with self._lock:
            try:
                fd = self._open()
                return self._repair_tail(fd)
            except OSError as exc:
                self._close_fd()
                raise OutputError(f"alerts file {self.path}: cannot open: {exc}") from exc

    def deliver(self, batch: Sequence[StoredAlert]) -> None:
        """Append the stored alerts at or above ``min_level`` and fsync (Output protocol)."""
        if self.config.enabled:
            self.append_lines([a.json for a in batch if a.level >= self.config.min_level])

    def write(self, alerts: Sequence[Alert]) -> int:
        """Append the alerts at or above ``min_level``; returns how many lines were written."""
        if not self.config.enabled:
            return 0
        lines = [a.document() for a in alerts if a.rule.level >= self.config.min_level]
        self.append_lines(lines)
        return len(lines)

    def close(self) -> None:
        with self._lock:
            self._close_fd()

    def append_lines(self, lines: Sequence[str]) -> None:
        """Append whole JSON lines, rotating first when due, and fsync; OutputError on failure
        (after cutting the file back to its last whole line)."""
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            before: int | None = None
            try:
                today = self._clock().astimezone(UTC).date()
                fd = self._open()
                if self._size and self._day is not None and self._day != today:
                    fd = self._rotate(self._day, daily=True)
                if self._size and self._size + len(data) > self.config.max_bytes:
                    fd = self._rotate(today, daily=False)
                if not self._size:
                    self._day = today
                before = self._size
                _write_all(fd, data)
                os.fsync(fd)
                self._size += len(data)
            except OSError as exc:
                self._cut_back(before)
                raise OutputError(f"{self.stem} file {self.path}: write failed: {exc}") from exc

    # ---- internals (called with the lock held) ---------------------------------------------

    def _cut_back(self, size: int | None) -> None:
        """After a failed append: drop what part of it reached the file (a torn line on a full
        disk), so shippers never read half a line; ``recover`` finishes the job otherwise."""
        if self._fd is not None and size is not None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as exc:
                log.warning("stage=output alerts file %s: cannot truncate: %s", self.path, exc)
        self._close_fd()

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        stat = os.fstat(fd)
        self._size = stat.st_size
        # A file left by an earlier run belongs to the day it was last written.
        self._day = datetime.fromtimestamp(stat.st_mtime, tz=UTC).date() if self._size else None
        self._fd = fd
        return fd

    def _repair_tail(self, fd: int) -> str:
        if not self._size:
            return ""
        with self.path.open("rb") as reader:
            start = max(0, self._size - TAIL_READ_BYTES)
            reader.seek(start)
            tail = reader.read(self._size - start)
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            keep = start + cut + 1 if cut >= 0 else start
            log.warning(
                "stage=output alerts file %s: torn last line (%d bytes) truncated",
                self.path,
                self._size - keep,
            )
            os.ftruncate(fd, keep)
            os.fsync(fd)
            self._size = keep
            tail = tail[: keep - start]
        lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
        try:
            document = json.loads(lines[-1]) if lines[-1] else {}
        except ValueError:
            return ""
        alert_id = document.get("id") if isinstance(document, dict) else None
        return alert_id if isinstance(alert_id, str) else ""

    def _rotate(self, day: date, *, daily: bool) -> int:
        self._close_fd()
        part = 0 if daily else 1
        target = rotated_path(self.directory, day, part, self.stem)
        while _taken(target):  # a restarted day, or the day file already taken: number on
            part += 1
            target = rotated_path(self.directory, day, part, self.stem)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        if self.compress:
            target = compress_rotated(target)
        log.info(
            "stage=output %s file rotated (%s) to %s",
            self.stem,
            "daily" if daily else "size",
            target,
        )
        return self._open()

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError as exc:
                log.debug("stage=output alerts file %s: close failed: %s", self.path, exc)
            finally:
                self._fd = None
                self._size = 0
                self._day = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
