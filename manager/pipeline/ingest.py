"""One batch from an agent, from raw records to committed alerts — before the ack.

    analyse: parse → dedupe key → drop already-stored events → decode + rules + correlation,
    in an analysis worker process (or on the manager's one analysis thread)
    commit: events and alerts in one transaction → alerts file

The link runs the two steps of consecutive batches of an agent overlapped (the next batch is
analysed while the previous one commits), still committing and acknowledging in order.

A record that cannot be parsed or decoded is counted and logged with agent, bucket/key and
index; the good records around it go on. A StoreError (or a dead worker) propagates so the
link withholds the ack and the agent resends later: nothing is acknowledged that is not
committed. Commits are serialised (SQLite has one writer); analysis of different agents'
batches may run in parallel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from trailwarden.common.errors import StoreError
from trailwarden.common.model import AgentRef, RecordBatch
from trailwarden.common.observability.histogram import (
    RECORD_BUCKETS,
    SECONDS_BUCKETS,
    FixedHistogram,
)
from trailwarden.manager.analysis.alert import Alert
from trailwarden.manager.pipeline.batch_analysis import BatchAnalysis, EventKeys
from trailwarden.manager.pipeline.workers import Analysis
from trailwarden.manager.store.base import AlertStore, EventRow

log = logging.getLogger(__name__)

MAX_PROBLEMS_KEPT = 50


class AlertSink(Protocol):
    def write(self, alerts: Sequence[Alert]) -> object: ...

    def close(self) -> None: ...


@dataclass
class IngestResult:
    records: int = 0
    new_events: int = 0
    duplicates: int = 0
    bad_records: int = 0
    alerts: int = 0


@dataclass
class PipelineCounters:
    """Totals since the manager started; served by `admin stats` (never reset)."""

    batches: int = 0
    records: int = 0
    analysed: int = 0
    duplicates: int = 0
    bad_records: int = 0
    alerts: int = 0
    store_failures: int = 0
    rules_fired: Counter[str] = field(default_factory=Counter)
    rule_levels: dict[str, int] = field(default_factory=dict)
    """Level of each rule in ``rules_fired`` (a rule's level is fixed), for metrics labels."""
    in_analysis: int = 0
    """Batches submitted to analysis and not finished yet (the workers' queue depth)."""
    commit_seconds: FixedHistogram = field(default_factory=lambda: FixedHistogram(SECONDS_BUCKETS))
    batch_records: FixedHistogram = field(default_factory=lambda: FixedHistogram(RECORD_BUCKETS))
    recent_problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def problem(self, message: str) -> None:
        with self.lock:
            self.recent_problems.insert(0, message)
            del self.recent_problems[MAX_PROBLEMS_KEPT:]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "batches": self.batches,
                "records": self.records,
                "analysed": self.analysed,
                "duplicates": self.duplicates,
                "bad_records": self.bad_records,
                "alerts": self.alerts,
                "store_failures": self.store_failures,
                "rules_fired": dict(self.rules_fired),
                "recent_problems": list(self.recent_problems),
            }


class Ingest:
    def __init__(
        self,
        store: AlertStore,
        analysis: Analysis,
        alert_sinks: Sequence[AlertSink] = (),
        counters: PipelineCounters | None = None,
    ) -> None:
        self.store = store
        self.analysis = analysis
        self.alert_sinks = list(alert_sinks)
        self.counters = counters or PipelineCounters()
        self._commit_lock = threading.Lock()

    def process(self, agent: AgentRef, batch: RecordBatch) -> IngestResult:
        """Analyse and commit one batch (the link runs the two steps apart, overlapped)."""
        return self.commit(agent, batch, self.analyse(agent, batch).result())

    def analyse(
        self,
        agent: AgentRef,
        batch: RecordBatch,
        also_seen: EventKeys = frozenset(),
    ) -> Future[BatchAnalysis]:
        """Start analysing the batch (new events and alerts, nothing stored yet).

        ``also_seen``: dedupe keys of the agent's batches analysed but not committed yet."""
        future = self.analysis.submit(agent, batch.source, batch.records, also_seen)
        with self.counters.lock:
            self.counters.in_analysis += 1
        future.add_done_callback(self._analysis_done)
        return future

    def _analysis_done(self, _: Future[BatchAnalysis]) -> None:
        with self.counters.lock:
            self.counters.in_analysis -= 1

    def commit(self, agent: AgentRef, batch: RecordBatch, analysed: BatchAnalysis) -> IngestResult:
        """Report the batch's bad records, store the rest (events and alerts in one
        transaction), then the outputs. Commits are serialised, in the order they are called."""
        where = batch.source.location
        for index, reason in analysed.bad:
            message = f"agent={agent.id} where={where} record={index}: {reason}"
            log.warning("stage=decode bad record %s", message)
            self.counters.problem(message)
        rows = [
            EventRow(
                event_key=e.event_key,
                recipient_account=e.recipient_account,
                agent_id=agent.id,
                event_time=e.event_time,
                location=where,
                raw=batch.records[e.position],
            )
            for e in analysed.new_events
        ]
        try:
            with self._commit_lock:
                started = time.perf_counter()
                stored = self.store.commit(rows, analysed.alerts)
                self.counters.commit_seconds.observe(time.perf_counter() - started)
                # Outputs follow the commit order, so the alerts file reads like the store.
                self._write_outputs(agent, where, analysed.alerts)
        except StoreError:
            with self.counters.lock:
                self.counters.store_failures += 1
            raise
        result = IngestResult(
            records=len(batch.records),
            new_events=len(rows),
            duplicates=analysed.duplicates,
            bad_records=len(analysed.bad),
            alerts=stored,
        )
        with self.counters.lock:
            self.counters.batches += 1
            self.counters.records += result.records
            self.counters.analysed += result.new_events
            self.counters.duplicates += result.duplicates
            self.counters.bad_records += result.bad_records
            self.counters.alerts += stored
            for alert in analysed.alerts:
                self.counters.rules_fired[alert.rule.id] += 1
                self.counters.rule_levels[alert.rule.id] = alert.rule.level
        self.counters.batch_records.observe(result.records)
        return result

    def _write_outputs(self, agent: AgentRef, where: str, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        for sink in self.alert_sinks:
            try:
                sink.write(alerts)
            except (OSError, StoreError) as exc:
                # The alerts are committed in the database; the file is an output of it.
                log.error(
                    "stage=store output failed agent=%s where=%s error=%s", agent.id, where, exc
                )
