"""One batch from an agent, from raw records to committed alerts — before the ack.

    parse JSON → dedupe key (eventID + recipientAccountId) → drop already-stored events →
    decode + rules + correlation → commit events and alerts in one transaction → alerts file

Runs on one dedicated thread (the Analyzer keeps correlation state and is single-threaded).
A record that cannot be parsed or decoded is counted and logged with agent, bucket/key and
index; the good records around it go on. A StoreError propagates so the link withholds the ack
and the agent resends later: nothing is acknowledged that is not committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trailwarden.common.errors import DecodeError, StoreError
from trailwarden.common.model import AgentRef, RecordBatch
from trailwarden.manager.alert import Alert
from trailwarden.manager.store.base import AlertStore, EventRow

log = logging.getLogger(__name__)

MAX_PROBLEMS_KEPT = 50


class AnalyzerLike(Protocol):
    def analyse(self, record: Any, raw: bytes, source: Any, agent: AgentRef) -> Any: ...


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float | str:
    # 1e400 is valid JSON but overflows to inf, which no alert output may carry: keep the text.
    value = float(text)
    return value if math.isfinite(value) else text


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
"""Strict JSON: NaN/Infinity refused (they would make alerts.json invalid JSON)."""


def parse_record(raw: bytes) -> Any:
    """One record's JSON; ValueError/RecursionError when it is not JSON.

    Lone UTF-16 surrogates (``"\\ud800"`` is valid JSON but not encodable as UTF-8) become
    U+FFFD, so that the alert store and alerts file can always write what the rules saw.
    """
    value = _DECODER.decode(raw.decode("utf-8"))
    if b"\\u" in raw and _has_surrogate(value):
        value = _without_surrogates(value)
    return value


def _has_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def event_key(record: dict[str, Any], raw: bytes) -> str:
    """CloudTrail's eventID, or a content hash for records that lack one."""
    event_id = record.get("eventID")
    if isinstance(event_id, str) and event_id:
        return event_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class Ingest:
    def __init__(
        self,
        store: AlertStore,
        analyzer: AnalyzerLike,
        alert_sinks: Sequence[AlertSink] = (),
        counters: PipelineCounters | None = None,
    ) -> None:
        self.store = store
        self.analyzer = analyzer
        self.alert_sinks = list(alert_sinks)
        self.counters = counters or PipelineCounters()

    def process(self, agent: AgentRef, batch: RecordBatch) -> IngestResult:
        result = IngestResult(records=len(batch.records))
        where = batch.source.location
        candidates: list[tuple[tuple[str, str], dict[str, Any], bytes]] = []
        in_batch: set[tuple[str, str]] = set()
        for index, raw in enumerate(batch.records):
            try:
                record = parse_record(raw)
            except (ValueError, RecursionError) as exc:
                self._bad(result, agent, where, index, f"not JSON: {exc}")
                continue
            if not isinstance(record, dict):
                self._bad(
                    result, agent, where, index, f"{type(record).__name__}, not a JSON object"
                )
                continue
            recipient = record.get("recipientAccountId")
            key = (
                event_key(record, raw),
                recipient if isinstance(recipient, str) else batch.source.account_id,
            )
            if key in in_batch:
                result.duplicates += 1
                continue
            in_batch.add(key)
            candidates.append((key, record, raw))
        seen = self.store.seen_events([key for key, _, _ in candidates]) if candidates else set()
        rows: list[EventRow] = []
        alerts: list[Alert] = []
        for key, record, raw in candidates:
            if key in seen:
                result.duplicates += 1
                continue
            event_time = record.get("eventTime")
            rows.append(
                EventRow(
                    event_key=key[0],
                    recipient_account=key[1],
                    agent_id=agent.id,
                    event_time=event_time if isinstance(event_time, str) else "",
                    location=where,
                    raw=raw,
                )
            )
            try:
                outcome = self.analyzer.analyse(record, raw, batch.source, agent)
            except DecodeError as exc:
                # Stored as seen all the same, so a resend does not count it twice.
                self._bad(result, agent, where, record_index(batch, raw), f"decode: {exc}")
                continue
            if outcome.alert is not None:
                alerts.append(outcome.alert)
        try:
            stored = self.store.commit(rows, alerts)
        except Exception:
            with self.counters.lock:
                self.counters.store_failures += 1
            raise
        result.new_events = len(rows)
        result.alerts = stored
        for sink in self.alert_sinks:
            try:
                sink.write(alerts)
            except (OSError, StoreError) as exc:
                # The alerts are committed in the database; the file is an output of it.
                log.error(
                    "stage=store output failed agent=%s where=%s error=%s", agent.id, where, exc
                )
        with self.counters.lock:
            self.counters.batches += 1
            self.counters.records += result.records
            self.counters.analysed += result.new_events
            self.counters.duplicates += result.duplicates
            self.counters.bad_records += result.bad_records
            self.counters.alerts += stored
            for alert in alerts:
                self.counters.rules_fired[alert.rule.id] += 1
        return result

    def _bad(
        self, result: IngestResult, agent: AgentRef, where: str, index: int, reason: str
    ) -> None:
        result.bad_records += 1
        message = f"agent={agent.id} where={where} record={index}: {reason}"
        log.warning("stage=decode bad record %s", message)
        self.counters.problem(message)


def record_index(batch: RecordBatch, raw: bytes) -> int:
    for index, candidate in enumerate(batch.records):
        if candidate is raw:
            return index
    return -1
