"""Small helpers shared by the agent tests (not fixtures: plain functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trailwarden.agent.collector import Collector
from trailwarden.agent.spool import Spool
from trailwarden.common.model import RecordBatch
from trailwarden.common.schema.sources import SourceConfig, parse_sources


def sources(*tables: dict[str, Any]) -> tuple[SourceConfig, ...]:
    return parse_sources(list(tables), "test.toml")


def drain(spool: Spool) -> list[RecordBatch]:
    """Every pending batch, acked (as the manager would), oldest first."""
    out: list[RecordBatch] = []
    while True:
        batches = spool.pending(0, 1000)
        if not batches:
            return out
        out.extend(batches)
        spool.ack(b.sequence for b in batches)


def records_of(batches: list[RecordBatch]) -> list[dict[str, Any]]:
    return [json.loads(r) for b in batches for r in b.records]


def event_ids(batches: list[RecordBatch]) -> list[str]:
    return [r["eventID"] for r in records_of(batches)]


def run_pass(tmp_path: Path, spool: Spool, *tables: dict[str, Any]) -> tuple[Collector, Any]:
    collector = Collector(sources(*tables), spool, state_dir=tmp_path)
    return collector, collector.run_once()
