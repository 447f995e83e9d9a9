"""The config applier: central config pushed by the manager, applied live, never half-applied.

The manager sends the agent's *effective* central config (its groups merged, then its own
overrides) as TOML with a revision number and a SHA-256 of the text. The applier checks it again
here — hash, schema (the same ``[[sources]]`` parser as agent.toml), no AWS secrets, and what only
this host can check (directory sources exist, AWS profiles are in this host's config files) —
then swaps the collector's sources with ``Collector.reconfigure`` without restarting anything:
in-flight objects finish, checkpoints are kept. On any failure the previous config keeps running
and the status says why. The applied revision, hash and TOML are saved in the agent home
(``central.json``) so a restarted agent resumes it before its first pass and tells the manager in
its hello what it runs.

The schema itself (parsing, secrets, hash) is ``trailwarden.common.schema.central``, shared
with the manager, which checks every revision with it before storing it.

While a central revision is applied, its sources replace agent.toml's (unless
``keep_local_sources``); revision 0 means "no central config": agent.toml's sources again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trailwarden.common.errors import ConfigError, TrailWardenError
from trailwarden.common.schema.central import config_hash, parse_central_config
from trailwarden.common.schema.sources import (
    DirectorySourceConfig,
    SourceConfig,
    SqsSourceConfig,
)
from trailwarden.common.wire import link_pb2

log = logging.getLogger(__name__)

CENTRAL_FILE = "central.json"
"""In the agent home: the applied central revision, its hash and TOML."""
APPLIED = "applied"
FAILED = "failed"


def check_on_host(sources: Sequence[SourceConfig], origin: str) -> None:
    """What only this host can check: folders exist, AWS profiles are configured here."""
    from trailwarden.agent.sources.aws import open_bucket  # the AWS SDK adapter

    for index, source in enumerate(sources):
        where = f"{origin}: sources[{index}] ({source.name})"
        if isinstance(source, DirectorySourceConfig):
            if not source.path.is_dir():
                raise ConfigError(f"{where}.path: {source.path} is not a folder on this agent host")
        elif isinstance(source, SqsSourceConfig):
            if source.aws_profile:
                from trailwarden.agent.sources.sqs_queue import check_profile

                try:
                    check_profile(dataclasses.replace(source, iam_role_arn=""))
                except TrailWardenError as exc:
                    reason = getattr(exc, "reason", str(exc))
                    raise ConfigError(f"{where}.aws_profile: {reason}") from exc
        elif source.aws_profile:
            # Creating the client reads the host's AWS config files and makes no network call;
            # the role (if any) is left out so no STS call is made here.
            try:
                open_bucket(dataclasses.replace(source, iam_role_arn=""))
            except TrailWardenError as exc:
                reason = getattr(exc, "reason", str(exc))
                raise ConfigError(f"{where}.aws_profile: {reason}") from exc


class Reconfigurable(Protocol):
    """What the applier needs from the collector."""

    def reconfigure(self, sources: Sequence[SourceConfig]) -> None: ...


@dataclass(frozen=True)
class AppliedConfig:
    """The central revision this agent runs (persisted in ``central.json``)."""

    revision: int
    hash: str
    toml: str
    applied_ms: int


@dataclass(frozen=True)
class ApplyResult:
    revision: int
    hash: str
    state: str
    """``applied`` or ``failed``."""
    error: str = ""


class ConfigApplier:
    """Applies central config revisions to a running collector (see the module docstring)."""

    def __init__(
        self,
        home: Path,
        collector: Reconfigurable,
        local_sources: Sequence[SourceConfig],
        *,
        check_host: bool = True,
    ) -> None:
        self.home = Path(home)
        self.collector = collector
        self.local_sources = tuple(local_sources)
        self.check_host = check_host
        self._lock = threading.Lock()
        self._base_level = logging.getLogger().level
        self._current: AppliedConfig | None = None
        self._sources: tuple[SourceConfig, ...] = self.local_sources
        self._resume()

    @property
    def path(self) -> Path:
        return self.home / CENTRAL_FILE

    @property
    def current(self) -> AppliedConfig | None:
        return self._current

    def applied(self) -> tuple[int, str]:
        """(revision, hash) applied now; (0, '') when running agent.toml's sources only."""
        current = self._current
        return (current.revision, current.hash) if current else (0, "")

    def apply(self, update: link_pb2.ConfigUpdate) -> link_pb2.ConfigStatus:
        """The link's hook: a ConfigUpdate in, the ConfigStatus to report back out."""
        result = self.apply_revision(update.revision, update.hash, update.config_toml)
        return link_pb2.ConfigStatus(
            revision=result.revision, hash=result.hash, state=result.state, error=result.error
        )

    def apply_revision(self, revision: int, wanted_hash: str, text: str) -> ApplyResult:
        """Apply one revision; on failure the previous config stays in force."""
        with self._lock:
            try:
                self._apply(revision, wanted_hash, text)
            except TrailWardenError as exc:
                log.error("stage=config revision %d not applied, previous kept: %s", revision, exc)
                return ApplyResult(revision, wanted_hash, FAILED, str(exc))
            except Exception as exc:  # a bug must not kill the link's reader; report it
                log.exception("stage=config revision %d: unexpected error", revision)
                return ApplyResult(
                    revision, wanted_hash, FAILED, f"internal error: {type(exc).__name__}: {exc}"
                )
        log.info("stage=config revision %d (%s) applied", revision, wanted_hash[:12] or "none")
        return ApplyResult(revision, wanted_hash, APPLIED)

    # ---- internals -----------------------------------------------------------------------

    def _apply(self, revision: int, wanted_hash: str, text: str) -> None:
        if revision == 0 and not wanted_hash:
            self._switch(self.local_sources, "", None)
            return
        current = self._current
        if current is not None and current.hash == wanted_hash and current.toml == text:
            # Same content under a newer number (e.g. a rollback to what runs): nothing to swap.
            self._save(AppliedConfig(revision, wanted_hash, text, _now_ms()))
            return
        if config_hash(text) != wanted_hash:
            raise ConfigError(
                f"central config revision {revision}: content does not match its hash "
                f"{wanted_hash[:12]} (corrupted in transit?)"
            )
        origin = f"central config revision {revision}"
        settings = parse_central_config(text, origin)
        if self.check_host:
            check_on_host(settings.sources, origin)
        self._switch(
            settings.effective_sources(self.local_sources),
            settings.log_level,
            AppliedConfig(revision, wanted_hash, text, _now_ms()),
        )

    def _switch(
        self, sources: tuple[SourceConfig, ...], log_level: str, applied: AppliedConfig | None
    ) -> None:
        previous = self._sources
        try:
            self.collector.reconfigure(sources)
        except Exception as exc:
            self.collector.reconfigure(previous)  # put back whatever was half swapped
            raise ConfigError(f"the collector refused the new sources: {exc}") from exc
        try:
            if applied is None:
                self.path.unlink(missing_ok=True)
            else:
                self._save(applied)
        except OSError as exc:
            self.collector.reconfigure(previous)
            raise ConfigError(f"cannot save the applied config to {self.path}: {exc}") from exc
        self._sources = sources
        self._current = applied
        logging.getLogger().setLevel(log_level or self._base_level)

    def _save(self, applied: AppliedConfig) -> None:
        """Write-then-rename, fsynced: a crash leaves the old file or the new one, never half."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as handle:
            json.dump(dataclasses.asdict(applied), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._current = applied

    def _resume(self) -> None:
        """Re-apply the saved revision (before the collector's first pass)."""
        try:
            saved = json.loads(self.path.read_text())
            applied = AppliedConfig(
                int(saved["revision"]), str(saved["hash"]), str(saved["toml"]), saved["applied_ms"]
            )
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error(
                "stage=config %s unreadable, running agent.toml's sources: %s", self.path, exc
            )
            return
        result = self.apply_revision(applied.revision, applied.hash, applied.toml)
        if result.state != APPLIED:
            log.error(
                "stage=config saved revision %d no longer applies (%s); running agent.toml's "
                "sources until the manager sends a revision",
                applied.revision,
                result.error,
            )


def _now_ms() -> int:
    return int(time.time() * 1000)
