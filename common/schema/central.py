"""The central config document: the schema the manager stores and pushes and the agent applies.

Both sides parse it with the same code (the manager when a revision is stored, the agent again
when it is applied), so this lives on the ground floor. Schema (TOML)::

    log_level = "INFO"            # optional: overrides agent.toml's [agent] log_level
    keep_local_sources = false    # true: agent.toml's sources run beside the central ones
    [limits]
    max_workers = 4               # cap on every source's concurrent downloads
    min_interval = "1m"           # floor on every source's interval
    [[sources]]                   # same schema as agent.toml
    ...

No AWS credential may appear anywhere in it (``refuse_secrets``); revisions are compared by the
SHA-256 of their text (``config_hash``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trailwarden.common.errors import SecretInConfigError
from trailwarden.common.schema.sources import (
    MAX_WORKERS,
    SourceConfig,
    SqsSourceConfig,
    parse_sources,
)
from trailwarden.common.tomlconfig import Section, parse_toml_text

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

SECRET_KEYS = frozenset(
    {
        "access_key",
        "secret_key",
        "session_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_key",
        "aws_secret",
    }
)
"""Keys that carry AWS credentials; refused anywhere in central config (any letter case)."""
_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")


def config_hash(text: str) -> str:
    """The content hash of a central config text (what revisions are compared by)."""
    return hashlib.sha256(text.encode()).hexdigest()


def refuse_secrets(data: object, origin: str, where: str = "") -> None:
    """SecretInConfigError if any key, at any depth, names an AWS credential, or any string
    value is an AWS access key ID. Credentials stay in the agent host's profiles."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            at = f"{where}.{key}" if where else str(key)
            if str(key).lower() in SECRET_KEYS:
                raise SecretInConfigError(
                    f"{origin}: {at}: AWS credentials never go in central config; name a "
                    "profile on the agent host (aws_profile) or a role (iam_role_arn) instead"
                )
            refuse_secrets(value, origin, at)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            refuse_secrets(value, origin, f"{where}[{index}]")
    elif isinstance(data, str) and _ACCESS_KEY_ID.search(data):
        raise SecretInConfigError(
            f"{origin}: {where}: looks like an AWS access key ID; credentials never go in "
            "central config"
        )


@dataclass(frozen=True)
class CentralSettings:
    """A parsed effective central config."""

    log_level: str = ""
    """Root log level while this config is applied; '' keeps agent.toml's."""
    keep_local_sources: bool = False
    """Run agent.toml's sources beside the central ones (a central source wins on a name clash)."""
    max_workers: int = 0
    """Cap on every source's concurrent downloads; 0: no cap."""
    min_interval: float = 0.0
    """Floor on every source's interval in seconds; 0: no floor."""
    sources: tuple[SourceConfig, ...] = ()
    """The central ``[[sources]]``."""

    def effective_sources(self, local: Sequence[SourceConfig]) -> tuple[SourceConfig, ...]:
        """The sources the collector runs under this config, limits applied."""
        chosen = list(self.sources)
        if self.keep_local_sources:
            names = {s.name for s in chosen}
            chosen = [s for s in local if s.name not in names] + chosen
        return tuple(self._limited(s) for s in chosen)

    def _limited(self, source: SourceConfig) -> SourceConfig:
        changes: dict[str, Any] = {}
        if self.max_workers and source.workers > self.max_workers:
            changes["workers"] = self.max_workers
        # An SQS source has no interval: its passes are long polls back to back.
        if (
            self.min_interval
            and not isinstance(source, SqsSourceConfig)
            and source.interval < self.min_interval
        ):
            changes["interval"] = self.min_interval
        return dataclasses.replace(source, **changes) if changes else source


def parse_central_config(text: str, origin: str) -> CentralSettings:
    """Parse and check an effective central config; ConfigError names origin and key."""
    data = parse_toml_text(text, origin)
    refuse_secrets(data, origin)
    top = Section(data, origin)
    log_level = top.str("log_level", "").strip().upper()
    if log_level and log_level not in LOG_LEVELS:
        raise top.error("log_level", f"expected one of {', '.join(LOG_LEVELS)}")
    keep_local = top.bool("keep_local_sources", False)
    limits = top.section("limits")
    max_workers = limits.int("max_workers", 0, minimum=0, maximum=MAX_WORKERS)
    min_interval = limits.duration("min_interval", 0)
    limits.done()
    sources = parse_sources(top.raw("sources", []), origin)
    top.done()
    return CentralSettings(log_level, keep_local, max_workers, min_interval, sources)
