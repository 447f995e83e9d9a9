"""The analysis pipeline: decode -> rules -> correlation -> alert, for one record at a time.

One ``Analyzer`` per worker (it is not thread-safe); its correlation state is keyed per agent,
so one Analyzer can serve many agents, but all records of one agent must go through the same
Analyzer for frequency rules to see them together. Duplicate records are dropped by the manager
before ``analyse`` is called (by eventID + recipientAccountId), so a resend never inflates a
frequency count.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from trailwarden.common.errors import DecodeError
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.manager.analysis.alert import Alert, RuleHit
from trailwarden.manager.analysis.correlate import Correlator, event_time
from trailwarden.manager.analysis.decode import decode_record
from trailwarden.manager.analysis.rules.matcher import EventView, RuleTree, TraceStep
from trailwarden.manager.analysis.rules.model import Rule, Ruleset
from trailwarden.manager.analysis.sigma.matcher import SigmaHit, SigmaMatcher

log = logging.getLogger(__name__)

SILENT_OPTIONS = frozenset({"no_log", "noalert"})
"""Rule options that keep a match from becoming an alert."""


@dataclass(slots=True)
class Outcome:
    """What became of one record."""

    event: dict[str, Any]
    """The decoded event (empty if the record could not be decoded)."""
    alert: Alert | None = None
    """The alert raised, if the deepest matching rule has level > 0."""
    rule: Rule | None = None
    """The deepest matching rule (also when it is level 0), None if no rule matched."""
    trace: list[TraceStep] = field(default_factory=list)
    """Every rule tried, in order (only filled when ``analyse(..., trace=True)``)."""
    error: str = ""
    """Why the record could not be decoded (set by logtest, which reports and goes on)."""
    sigma_alerts: list[Alert] = field(default_factory=list)
    """Alerts of the Sigma rules (and correlations) that matched, beside the tree's alert."""
    sigma_hits: list[SigmaHit] = field(default_factory=list)
    """Every Sigma rule that matched, also those that do not alert (``generate: false``)."""
    sigma_trace: list[tuple[str, bool]] = field(default_factory=list)
    """Every Sigma rule tried and whether it matched (only with ``trace=True``)."""

    @property
    def alerts(self) -> list[Alert]:
        """Every alert the record raised: the tree's, then the Sigma rules'."""
        return ([self.alert] if self.alert is not None else []) + self.sigma_alerts


class Analyzer:
    """Decode, match and correlate records, raising alerts."""

    def __init__(
        self,
        ruleset: Ruleset,
        manager_name: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.manager_name = manager_name
        self.rule_count = len(ruleset)
        """Rules loaded (health checks report it)."""
        self._clock = clock
        self._tree = RuleTree(ruleset)
        self._sigma = SigmaMatcher(ruleset)
        self._describe = describers(ruleset)
        self._correlator = Correlator()
        # Alert IDs are "<unix seconds>.<n>"; n starts at pid x 1e9 so that the worker
        # processes of one manager, each with its own Analyzer, never hand out the same ID.
        self._alert_ids = itertools.count(os.getpid() * 1_000_000_000 + 1)
        self._records = 0
        self._alerts = 0
        self._decode_errors = 0
        self._fired: Counter[str] = Counter()
        self._stamp_second = 0
        self._stamp_prefix = ""
        self._last_source: SourceMeta | None = None
        self._last_location = ""

    @property
    def ruleset(self) -> Ruleset:
        return self._tree.ruleset

    def replace_ruleset(self, ruleset: Ruleset) -> None:
        """Switch to a new (already validated) ruleset; correlation windows of rules that
        persist unchanged are kept, the rest start empty."""
        correlator = Correlator(self._correlator.max_keys_per_rule)
        correlator.adopt(self._correlator, ruleset)
        self._tree = RuleTree(ruleset)
        self._sigma = SigmaMatcher(ruleset)
        self._describe = describers(ruleset)
        self._correlator = correlator
        log.info("stage=match ruleset replaced rules=%d", len(ruleset.rules))

    def analyse(
        self,
        record: Mapping[str, Any],
        raw: bytes,
        source: SourceMeta,
        agent: AgentRef,
        *,
        trace: bool = False,
    ) -> Outcome:
        """Run one record through decode, rules and correlation.

        A record that cannot be decoded (not a JSON object) is counted in
        ``stats()["decode_errors"]`` and raises DecodeError naming its source, for the caller
        to report; nothing else about the record is kept.
        """
        self._records += 1
        try:
            event = decode_record(record, source, agent, raw=raw)
        except DecodeError as exc:
            self._decode_errors += 1
            log.warning("stage=decode agent=%s where=%s error=%s", agent.id, source.location, exc)
            raise
        view = EventView(event, raw, agent.id, decoded=True)
        steps: list[TraceStep] | None = [] if trace else None
        final, path = self._tree.walk(view, self._check, steps)
        outcome = Outcome(event=event, rule=final, trace=steps if steps is not None else [])
        if self._sigma.count:
            self._run_sigma(outcome, view, record, source, agent, trace)
        if final is None:
            return outcome
        correlator = self._correlator
        for rule in path:
            if rule.stateful:
                correlator.fired(path, view, agent.id, self._event_time(view))
                break
        listeners = self._tree.listeners[final.id]
        if listeners:
            correlator.observe(final, listeners, view, agent.id, self._event_time(view))
        if final.level > 0 and not (final.options & SILENT_OPTIONS):
            outcome.alert = self._alert(final, view, record, source, agent)
        return outcome

    def _run_sigma(
        self,
        outcome: Outcome,
        view: EventView,
        record: Mapping[str, Any],
        source: SourceMeta,
        agent: AgentRef,
        trace: bool,
    ) -> None:
        hits = self._sigma.match(
            view, self._correlator, self._event_time, outcome.sigma_trace if trace else None
        )
        if not hits:
            return
        outcome.sigma_hits = hits
        for hit in hits:
            if hit.detection is not None:
                if hit.detection.alerts:
                    rule = hit.detection.rule
                    outcome.sigma_alerts.append(self._alert(rule, view, record, source, agent))
            else:
                assert hit.correlation is not None
                spec = hit.correlation
                alert = self._alert(spec.rule, view, record, source, agent)
                alert.rule.frequency = spec.threshold
                outcome.sigma_alerts.append(alert)

    def _event_time(self, view: EventView) -> float:
        when = view.when
        if when is None:
            when = view.when = event_time(view, self._clock)
        return when

    def _check(self, rule: Rule, view: EventView) -> tuple[bool, str]:
        return self._correlator.check(rule, view, view.agent_id, self._event_time(view))

    def _timestamp(self) -> str:
        """RFC 3339 UTC now, formatting the seconds part once per second (it is per alert)."""
        now = time.time()
        second = int(now)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp_prefix}.{int((now - second) * 1000):03d}Z"

    def _alert(
        self,
        rule: Rule,
        view: EventView,
        record: Mapping[str, Any],
        source: SourceMeta,
        agent: AgentRef,
    ) -> Alert:
        self._alerts += 1
        fired = self._fired
        fired[rule.id] += 1
        get = record.get
        identity = get("userIdentity")
        timestamp = self._timestamp()
        # Positional arguments, in field order: two dataclass constructions per record, and
        # keywords cost about twice as much to bind.
        hit = RuleHit(
            rule.id,
            rule.level,
            self._describe[rule.id](view),
            rule.groups,
            rule.mitre_ids,
            fired[rule.id],
            rule.frequency if rule.is_correlation else 0,
            rule.mitre_tactics,
        )
        account = get("recipientAccountId")
        account = account if type(account) is str else _text(account)
        if source is not self._last_source:
            self._last_source = source
            self._last_location = source.location
        event_id = get("eventID")
        event_time = get("eventTime") or get("@timestamp")
        region = get("awsRegion")
        event_source = get("eventSource")
        event_name = get("eventName")
        source_ip = get("sourceIPAddress")
        return Alert(
            f"{self._stamp_second}.{next(self._alert_ids)}",  # id
            timestamp,
            hit,
            agent,
            self.manager_name,
            self._last_location,  # location
            view.event,  # data
            event_id if type(event_id) is str else _text(event_id),
            account,  # recipient_account
            event_time if type(event_time) is str else _text(event_time),
            account or source.account_id,  # account
            (region if type(region) is str else _text(region)) or source.region,
            event_source if type(event_source) is str else _text(event_source),
            event_name if type(event_name) is str else _text(event_name),
            principal_name(identity) if type(identity) is dict else "",  # user
            source_ip if type(source_ip) is str else _text(source_ip),
            "" if "no_full_log" in rule.options else view.full_log(),
        )

    def stats(self) -> dict[str, Any]:
        """Counters since start: records, alerts, decode_errors, fired (per rule ID)."""
        return {
            "records": self._records,
            "alerts": self._alerts,
            "decode_errors": self._decode_errors,
            "fired": dict(self._fired),
            "correlation_entries": self._correlator.state_size(),
        }


def describers(ruleset: Ruleset) -> dict[str, Callable[[EventView], str]]:
    """Per rule ID, a function giving its expanded description: the constant text itself when
    it has no ``$(field)`` (built once, not joined again for every alert)."""
    out: dict[str, Callable[[EventView], str]] = {}
    for rule in ruleset.rules.values():
        if any(part.name is not None for part in rule.description):
            out[rule.id] = partial(expand_description, rule)
        else:
            out[rule.id] = partial(_constant, "".join(part.text for part in rule.description))
    return out


def _constant(text: str, view: EventView) -> str:
    return text


def expand_description(rule: Rule, view: EventView) -> str:
    """The rule's description with each ``$(field)`` replaced by the event's value."""
    out = []
    for part in rule.description:
        if part.name is None:
            out.append(part.text)
        else:
            out.append(view.value(part.name) or "")
    return "".join(out)


def principal_name(identity: Mapping[str, Any]) -> str:
    """userName, else the ARN's last part, else the principal ID (Alert.user)."""
    name = identity.get("userName")
    if isinstance(name, str) and name:
        return name
    arn = identity.get("arn")
    if isinstance(arn, str) and arn:
        tail = arn.rsplit(":", 1)[-1]
        return tail.rsplit("/", 1)[-1] if "/" in tail else tail
    principal = identity.get("principalId")
    return principal if isinstance(principal, str) else ""


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    return "" if value is None else str(value)
