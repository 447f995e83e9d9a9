"""Domain types that cross component boundaries (agent ⇄ wire ⇄ manager).

Protobuf messages stay at the wire edge (`trailwarden.common.wire`); everything else works on
these plain frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceMeta:
    """Where a group of records came from."""

    source: str
    """Name of the source in the agent's config."""
    bucket: str = ""
    """S3 bucket; empty for directory sources."""
    key: str = ""
    """S3 key or local file path."""
    account_id: str = ""
    """AWS account from the key layout (AWSLogs/<account>/...)."""
    region: str = ""
    """AWS region from the key layout."""
    account_alias: str = ""
    """Friendly account name from the source config (Wazuh's aws_account_alias)."""

    @property
    def location(self) -> str:
        """``bucket/key`` for S3, the path for files: what an admin needs to find the object."""
        return f"{self.bucket}/{self.key}" if self.bucket else self.key


@dataclass(frozen=True, slots=True)
class AgentRef:
    """An agent as the manager knows it; the ID always comes from the peer certificate."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one object (or part of one) in transit from spool to manager store."""

    sequence: int
    source: SourceMeta
    records: tuple[bytes, ...]
