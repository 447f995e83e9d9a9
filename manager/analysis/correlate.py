"""Correlation: Wazuh's ``frequency``/``timeframe`` rules, over CloudTrail event time.

A correlation rule R (``if_matched_sid S`` or ``if_matched_group G``) keeps a window of the
earlier events whose final rule was S (or had group G) and alerted (level > 0), as Wazuh does.
R fires on the N-th such event when ``frequency="N"``: the current event plus N-1 earlier ones
inside ``timeframe`` seconds, from the same agent (Wazuh's per-agent semantics), with equal
``same_field`` values and, for ``different_field``, earlier events whose value differs from the
current one. An earlier event exactly ``timeframe`` seconds away is still inside. When R fires
its window for that key is emptied (Wazuh marks those events as used), so the next alert needs
N fresh events. ``ignore="S"`` silences a rule for S seconds (per agent) after it fired.

Time is the record's CloudTrail ``eventTime``, not arrival: delivery is minutes late and a
backfill replays days, so arrival time would merge unrelated events and split real bursts.
Events a little out of order still count (distance is measured both ways).

State is bounded: each window keeps at most a few times N entries per key, keys per rule are
capped (least recently used evicted), and keys whose newest entry fell out of the timeframe
(relative to the newest event time seen) are swept periodically, so memory stays flat however
long the manager runs.

Sigma correlation rules (``event_count``, ``value_count``, ``temporal``) run on the same
windows (``SigmaWindow``): keyed by agent + ``group-by`` values, measured in event time, bounded
the same way; a rule fires on the event that brings its window to the threshold (``gte``) and
then empties that key's window, as a Wazuh frequency rule does, so a sustained burst raises one
alert per threshold's worth of events rather than one per event.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from trailwarden.manager.analysis.rules.matcher import EventView
from trailwarden.manager.analysis.rules.model import CorrelationSpec, Rule, Ruleset

log = logging.getLogger(__name__)

MAX_KEYS_PER_RULE = 10_000
"""Distinct (agent, same_field values) windows kept per correlation rule."""
SWEEP_EVERY = 4096
"""Additions to a window between sweeps of expired keys."""
MAX_IGNORE_ENTRIES = 10_000

_EVENT_TIME = "aws.eventTime"
_FALLBACK_TIME = "aws.@timestamp"

Entry = tuple[float, tuple[str | None, ...]]


def event_time(view: EventView, clock: Callable[[], float] = time.time) -> float:
    """The event's CloudTrail time in epoch seconds (``@timestamp``, then now, as fallbacks)."""
    for name in (_EVENT_TIME, _FALLBACK_TIME):
        text = view.value(name)
        if text:
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)  # CloudTrail times are UTC
            return when.timestamp()
    return clock()


class Window:
    """The earlier events one correlation rule can count, keyed by agent + same_field values."""

    def __init__(self, rule: Rule, max_keys: int) -> None:
        self.rule = rule
        self.max_keys = max_keys
        self.need = max(rule.frequency - 1, 1)
        self.maxlen = min(max(self.need * 4, 8), 4096)
        self.same_paths = rule.same_fields
        self.different_paths = rule.different_fields
        self.entries: dict[tuple[str | None, ...], deque[Entry]] = {}
        self.newest = float("-inf")
        self.added = 0

    def key(self, view: EventView, agent_id: str) -> tuple[str | None, ...] | None:
        paths = self.same_paths
        if len(paths) == 1:  # the usual one same_field (aws.userIdentity.arn): no list built
            only = view.value(paths[0])
            return None if only is None else (agent_id, only)
        values = [agent_id]
        for path in paths:
            value = view.value(path)
            if value is None:
                return None  # Wazuh: a missing same_field never correlates
            values.append(value)
        return tuple(values)

    def count(self, view: EventView, agent_id: str, now: float) -> int:
        key = self.key(view, agent_id)
        if key is None:
            return 0
        entries = self.entries.get(key)
        if not entries:
            return 0
        timeframe = self.rule.timeframe
        paths = self.different_paths
        total = 0
        # This loop runs over the whole window for every event that reaches a correlation
        # rule: the usual shapes (no different_field, or one) get a loop without tuples.
        if len(paths) > 1:
            current = tuple(view.value(p) for p in paths)
            for when, values in entries:
                if abs(now - when) > timeframe:
                    continue
                if any(
                    mine is not None and mine == theirs
                    for mine, theirs in zip(current, values, strict=True)
                ):
                    continue
                total += 1
            return total
        mine = view.value(paths[0]) if paths else None
        if mine is None:  # nothing to differ from: every entry inside the timeframe counts
            for when, _ in entries:
                if abs(now - when) <= timeframe:
                    total += 1
            return total
        for when, values in entries:
            if values[0] != mine and abs(now - when) <= timeframe:
                total += 1
        return total

    def add(self, view: EventView, agent_id: str, now: float) -> None:
        key = self.key(view, agent_id)
        if key is None:
            return
        entries = self.entries.pop(key, None)
        if entries is None:
            entries = deque(maxlen=self.maxlen)
        entries.append((now, tuple(view.value(p) for p in self.different_paths)))
        while entries and now - entries[0][0] > self.rule.timeframe:
            entries.popleft()
        self.entries[key] = entries  # re-inserted: most recently used last
        if len(self.entries) > self.max_keys:
            del self.entries[next(iter(self.entries))]
        self.newest = max(self.newest, now)
        self.added += 1
        if self.added % SWEEP_EVERY == 0:
            self.sweep()

    def clear(self, view: EventView, agent_id: str) -> None:
        key = self.key(view, agent_id)
        if key is not None:
            self.entries.pop(key, None)

    def sweep(self) -> None:
        """Drop keys whose newest entry is outside the timeframe of the newest event seen."""
        horizon = self.newest - self.rule.timeframe
        stale = [key for key, entries in self.entries.items() if entries[-1][0] < horizon]
        for key in stale:
            del self.entries[key]

    def size(self) -> int:
        return sum(len(entries) for entries in self.entries.values())


SigmaKey = tuple[str | None, ...]
SigmaEntry = tuple[float, object]


class SigmaWindow:
    """The matches one Sigma correlation rule counts, keyed by agent + group-by values.

    Each entry is (event time, what is counted): nothing for ``event_count``, the field value
    for ``value_count`` (distinct values are counted), the referenced rule for ``temporal``
    (distinct rules are counted)."""

    def __init__(self, spec: CorrelationSpec, max_keys: int) -> None:
        self.spec = spec
        self.max_keys = max_keys
        self.maxlen = min(max(spec.threshold * 4, 8), 4096)
        self.entries: dict[SigmaKey, deque[SigmaEntry]] = {}
        self.newest = float("-inf")
        self.added = 0

    def add(self, key: SigmaKey, counted: object, now: float) -> bool:
        """Record one match; True when the window reached the threshold (it is then emptied)."""
        spec = self.spec
        entries = self.entries.pop(key, None)
        if entries is None:
            entries = deque(maxlen=self.maxlen)
        entries.append((now, counted))
        while entries and now - entries[0][0] > spec.timespan:
            entries.popleft()
        inside = [what for when, what in entries if abs(now - when) <= spec.timespan]
        if spec.kind == "event_count":
            reached = len(inside)
        else:
            reached = len({what for what in inside if what is not None})
        self.newest = max(self.newest, now)
        if reached >= spec.threshold:
            return True  # the key's window is used up: not re-inserted
        self.entries[key] = entries  # re-inserted: most recently used last
        if len(self.entries) > self.max_keys:
            del self.entries[next(iter(self.entries))]
        self.added += 1
        if self.added % SWEEP_EVERY == 0:
            horizon = self.newest - spec.timespan
            for stale in [k for k, e in self.entries.items() if e[-1][0] < horizon]:
                del self.entries[stale]
        return False

    def size(self) -> int:
        return sum(len(entries) for entries in self.entries.values())


class Correlator:
    """Every correlation window of one Analyzer (single-threaded, like the Analyzer)."""

    def __init__(self, max_keys_per_rule: int = MAX_KEYS_PER_RULE) -> None:
        self.max_keys_per_rule = max_keys_per_rule
        self.windows: dict[str, Window] = {}
        self.sigma_windows: dict[str, SigmaWindow] = {}
        self.ignored_until: dict[tuple[str, str], float] = {}

    def sigma_match(
        self, spec: CorrelationSpec, key: SigmaKey, counted: object, now: float
    ) -> bool:
        """A rule ``spec`` counts matched; True when ``spec`` fires on this event."""
        window = self.sigma_windows.get(spec.rule.id)
        if window is None or window.spec is not spec:
            if window is None or window.spec.signature() != spec.signature():
                window = SigmaWindow(spec, self.max_keys_per_rule)
            window.spec = spec
            self.sigma_windows[spec.rule.id] = window
        return window.add(key, counted, now)

    def window(self, rule: Rule) -> Window:
        window = self.windows.get(rule.id)
        if window is None or window.rule is not rule:
            window = Window(rule, self.max_keys_per_rule)
            self.windows[rule.id] = window
        return window

    def check(self, rule: Rule, view: EventView, agent_id: str, now: float) -> tuple[bool, str]:
        """Whether ``rule`` passes its ignore and frequency checks for this event."""
        if rule.ignore:
            until = self.ignored_until.get((rule.id, agent_id))
            if until is not None and now < until:
                return False, f"ignored for {until - now:.0f}s more"
        if not rule.is_correlation:
            return True, ""
        window = self.window(rule)
        earlier = window.count(view, agent_id, now)
        if earlier < window.need:
            return False, f"{earlier + 1} of {max(rule.frequency, 2)} in {rule.timeframe}s"
        return True, f"{earlier + 1} events in {rule.timeframe}s"

    def fired(self, path: list[Rule], view: EventView, agent_id: str, now: float) -> None:
        """The walk matched ``path``: correlation rules on it used up their window (for this
        key), and the deciding rule, if it has ``ignore``, starts its quiet period (as Wazuh
        does for the rule that raised the alert)."""
        for rule in path:
            if rule.is_correlation:
                self.window(rule).clear(view, agent_id)
        final = path[-1]
        if final.ignore:
            if len(self.ignored_until) >= MAX_IGNORE_ENTRIES:
                del self.ignored_until[next(iter(self.ignored_until))]
            self.ignored_until[(final.id, agent_id)] = now + final.ignore

    def observe(
        self, final: Rule, listeners: list[Rule], view: EventView, agent_id: str, now: float
    ) -> None:
        """Record an event that ended at ``final`` into the windows of its ``listeners``."""
        if final.level == 0:
            return  # Wazuh: level-0 events are not kept for if_matched_sid
        for listener in listeners:
            self.window(listener).add(view, agent_id, now)

    def adopt(self, previous: Correlator, ruleset: Ruleset) -> None:
        """Keep windows of ``previous`` whose rule persists unchanged in ``ruleset``."""
        for rule_id, window in previous.windows.items():
            rule = ruleset.rules.get(rule_id)
            if rule is not None and (
                rule.correlation_signature() == window.rule.correlation_signature()
            ):
                window.rule = rule
                self.windows[rule_id] = window
        self.ignored_until = {
            key: until for key, until in previous.ignored_until.items() if key[0] in ruleset.rules
        }
        specs = {spec.rule.id: spec for spec in ruleset.correlations}
        for rule_id, sigma_window in previous.sigma_windows.items():
            spec = specs.get(rule_id)
            if spec is not None and spec.signature() == sigma_window.spec.signature():
                sigma_window.spec = spec
                self.sigma_windows[rule_id] = sigma_window

    def state_size(self) -> int:
        """Entries held across all windows (for tests and stats: memory stays bounded)."""
        return sum(window.size() for window in self.windows.values()) + sum(
            window.size() for window in self.sigma_windows.values()
        )
