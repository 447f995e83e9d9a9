"""The directory source: CloudTrail files already on disk, for offline and forensic work.

Reads ``.json`` and ``.json.gz`` files (``{"Records": [...]}``, JSON arrays or JSON lines) under
a folder, optionally narrowed by a glob. Each file is checkpointed by path, size and mtime: a
rerun does not resend it, a file that changed is read again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from trailwarden.agent.checkpoint import ERROR, Checkpoints, CheckpointUpdate, FileTaken
from trailwarden.agent.sources.pipeline import WorkItem
from trailwarden.agent.spool import Spool
from trailwarden.agent.status import SourceTracker
from trailwarden.common.errors import ObjectError, SourceError
from trailwarden.common.model import SourceMeta
from trailwarden.common.schema.sources import DirectorySourceConfig

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")


class DirectoryRun:
    """One directory source, ready to plan passes (see pipeline.SourceRun)."""

    def __init__(self, config: DirectorySourceConfig, spool: Spool, tracker: SourceTracker) -> None:
        self.config = config
        self.name = config.name
        self.skip_on_error = config.skip_on_error
        self.discard = config.discard
        self.workers = config.workers
        self.tracker = tracker
        self._checkpoints = Checkpoints(spool)

    def plan(self, stop: threading.Event) -> Iterator[WorkItem]:
        root = self.config.path
        if not root.is_dir():
            raise SourceError(
                "not a directory (or not readable)", source=self.name, where=str(root)
            )
        for path in sorted(root.glob(self.config.glob)):
            if stop.is_set():
                return
            if not path.is_file():
                continue
            if not path.name.endswith(FILE_SUFFIXES):
                self.tracker.skipped()
                continue
            try:
                info = path.stat()
            except OSError as exc:
                self.tracker.problem(str(path), f"cannot stat: {exc.strerror}")
                continue
            seen = self._checkpoints.file(str(path))
            if (
                seen is not None
                and seen.state != ERROR
                and seen.size == info.st_size
                and seen.mtime_ns == info.st_mtime_ns
            ):
                continue
            yield self._item(path, info.st_size, info.st_mtime_ns)

    def end_pass(self) -> None:
        return None

    def _item(self, path: Path, size: int, mtime_ns: int) -> WorkItem:
        def read() -> bytes:
            try:
                return path.read_bytes()
            except OSError as exc:
                raise ObjectError(
                    f"cannot read: {exc.strerror}", source=self.name, where=str(path)
                ) from exc

        def finish(state: str, reason: str, retryable: bool) -> CheckpointUpdate:
            return FileTaken(str(path), size, mtime_ns, state, reason)

        return WorkItem(
            meta=SourceMeta(
                source=self.name, key=str(path), account_alias=self.config.aws_account_alias
            ),
            size=size,
            read=read,
            finish=finish,
        )
