"""Analyse one batch: parse → dedupe key → drop already-seen events → decode + rules.

A pure step with no I/O of its own (the seen-lookup is passed in), so it runs the same in the
ingest thread or in an analysis worker process. Its result is small and picklable: the alerts,
the keys of the new events, and the records that could not be used (with their index).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import orjson

from trailwarden.common.errors import DecodeError
from trailwarden.common.logfile import reject_constant
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.manager.analysis.alert import Alert

SeenLookup = Callable[[Sequence[tuple[str, str]]], set[tuple[str, str]]]
EventKeys = Collection[tuple[str, str]]
"""Dedupe keys (eventID, recipientAccountId) of events analysed but not committed yet."""


class AnalyzerLike(Protocol):
    def analyse(self, record: Any, raw: bytes, source: Any, agent: AgentRef) -> Any: ...

    def replace_ruleset(self, ruleset: Any) -> None: ...


class NewEvent(NamedTuple):
    """A record not stored before (a tuple: one per record crosses back from a worker, and a
    frozen dataclass costs several times as much to unpickle)."""

    position: int
    """Position of the record in its batch (the raw bytes stay with the caller)."""
    event_key: str
    recipient_account: str
    event_time: str


@dataclass(slots=True)
class BatchAnalysis:
    new_events: list[NewEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    duplicates: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    """(record index, reason) for records that could not be parsed or decoded."""
    rule_errors: list[tuple[int, str]] = field(default_factory=list)
    """(record index, error) for rule tests that could not be decided (a backtracking match
    stopped at its limit); the record itself was analysed and kept."""


def _finite_float(text: str) -> float | str:
    # 1e400 is valid JSON but overflows to inf, which no alert output may carry: keep the text.
    value = float(text)
    return value if math.isfinite(value) else text


_DECODER = json.JSONDecoder(parse_constant=reject_constant, parse_float=_finite_float)
"""Strict JSON: NaN/Infinity refused (they would make alerts.json invalid JSON)."""


def parse_record(raw: bytes) -> Any:
    """One record's JSON; ValueError/RecursionError when it is not JSON.

    orjson reads the common record about three times faster than the standard library. The
    records it would read differently from what we promise take the strict standard-library
    path instead (only they pay for it): those it refuses (lone UTF-16 surrogates, numbers
    beyond a double, BOMs, invalid JSON — which then fails here too, with the standard
    library's message) and those with a run of 19+ digits, an integer orjson might turn into
    a float (a false alarm inside a string only costs the slower parse).
    """
    shape = raw.translate(_SHAPE)
    if shape.find(_LONG_NUMBER) < 0:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = _strict_parse(raw)
    else:
        value = _strict_parse(raw)
    # Counting brackets is C-speed; only a record that could be that deep pays for a walk,
    # and only one that is pays for a copy.
    if shape.count(b"{") > MAX_NESTING and _deeper_than(value, MAX_NESTING):
        value = _limit_depth(value, 0)
    return value


_SHAPE = bytes(
    0x30 if 0x30 <= byte <= 0x39 else 0x7B if byte in b"{[" else 0x20 for byte in range(256)
)
"""A record's shape in one C-speed pass: digits become ``0``, openings ``{``, the rest blank."""
_LONG_NUMBER = b"0" * 19
"""orjson keeps integers in [-2**63, 2**64) exact; 19 digits is the shortest that may not be."""


def _strict_parse(raw: bytes) -> Any:
    """The standard library's strict parse: NaN/Infinity refused, 1e400 kept as its text.

    Lone UTF-16 surrogates (``"\\ud800"`` is valid JSON but not encodable as UTF-8) become
    U+FFFD: left in, the alert store's commit raised UnicodeEncodeError and the batch was never
    acknowledged (the agent's link stalled on it).
    """
    value = _DECODER.decode(raw.decode("utf-8"))
    if b"\\u" in raw and _has_surrogate(value):
        value = _without_surrogates(value)
    return value


MAX_NESTING = 256
"""Deeper parts of a record are replaced by a marker string. A record a few levels short of
Python's recursion limit could be read but its alert could not be written (RecursionError in
the store commit): the batch was never acknowledged and the agent's link stalled on it. Real
CloudTrail records nest a few levels; the rest of such a record is still analysed."""
DEEPER = f"[nested deeper than {MAX_NESTING} levels]"


def _deeper_than(value: Any, levels: int) -> bool:
    if isinstance(value, dict):
        return levels <= 0 or any(_deeper_than(v, levels - 1) for v in value.values())
    if isinstance(value, list):
        return levels <= 0 or any(_deeper_than(v, levels - 1) for v in value)
    return False


def _limit_depth(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        if depth >= MAX_NESTING:
            return DEEPER
        return {k: _limit_depth(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= MAX_NESTING:
            return DEEPER
        return [_limit_depth(v, depth + 1) for v in value]
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


def analyse_batch(
    analyzer: AnalyzerLike,
    seen: SeenLookup,
    agent: AgentRef,
    source: SourceMeta,
    records: Sequence[bytes],
    also_seen: EventKeys = frozenset(),
) -> BatchAnalysis:
    """``also_seen``: dedupe keys of the agent's earlier batches that are analysed but not yet
    committed (the link analyses the next batch while the previous one commits); their events
    count as seen, as they would once that commit is done."""
    out = BatchAnalysis()
    candidates: list[tuple[int, tuple[str, str], dict[str, Any]]] = []
    in_batch: set[tuple[str, str]] = set()
    for index, raw in enumerate(records):
        try:
            record = parse_record(raw)
        except (ValueError, RecursionError) as exc:
            out.bad.append((index, f"not JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            out.bad.append((index, f"{type(record).__name__}, not a JSON object"))
            continue
        recipient = record.get("recipientAccountId")
        key = (
            event_key(record, raw),
            recipient if isinstance(recipient, str) else source.account_id,
        )
        if key in in_batch or key in also_seen:
            out.duplicates += 1
            continue
        in_batch.add(key)
        candidates.append((index, key, record))
    already = seen([key for _, key, _ in candidates]) if candidates else set()
    for index, key, record in candidates:
        if key in already:
            out.duplicates += 1
            continue
        event_time = record.get("eventTime")
        # Stored as seen even when it cannot be decoded, so a resend is not counted twice.
        out.new_events.append(
            NewEvent(index, key[0], key[1], event_time if isinstance(event_time, str) else "")
        )
        try:
            outcome = analyzer.analyse(record, records[index], source, agent)
        except DecodeError as exc:
            out.bad.append((index, f"decode: {exc}"))
            continue
        rule_errors = getattr(outcome, "rule_errors", None)
        if rule_errors:
            out.rule_errors.extend((index, message) for message in rule_errors)
        if outcome.alert is not None:
            out.alerts.append(outcome.alert)
        out.alerts.extend(outcome.sigma_alerts)
    return out
