"""What the manager tells Prometheus and health probes.

Metrics are read at scrape time from what the pipeline already counts (``PipelineCounters``), the
live link sessions and the central-config states, so the hot path carries no metrics library:
names follow Prometheus conventions (``trailwarden_`` prefix, ``_total`` counters, base units,
labels only of bounded sets — rule, level, state — never per event or per agent).

Readiness: the store answers a query through a fresh connection and a ruleset is loaded. The same
check drives ``/readyz`` and the gRPC health service on the link port.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from trailwarden.common.observability.histogram import HistogramSnapshot
from trailwarden.manager.central.store import ConfigStore
from trailwarden.manager.link.sessions import Sessions
from trailwarden.manager.pipeline.ingest import PipelineCounters

log = logging.getLogger(__name__)

CONFIG_STATES = ("pending", "applied", "failed")


def _histogram(name: str, documentation: str, snap: HistogramSnapshot) -> HistogramMetricFamily:
    buckets = [(_bound(b), c) for b, c in zip(snap.bounds, snap.cumulative, strict=False)]
    buckets.append(("+Inf", snap.count))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=snap.total)


def _bound(value: float) -> str:
    return str(int(value)) if value == int(value) and value >= 1 else repr(value)


OUTPUT_METRICS = (
    (
        GaugeMetricFamily,
        "output_backlog_alerts",
        "backlog",
        "Alerts stored after an output's delivered-cursor (waiting for it).",
    ),
    (
        CounterMetricFamily,
        "output_failures",
        "failures",
        "Failed delivery attempts of an output (each retried from the store).",
    ),
    (
        CounterMetricFamily,
        "output_delivered_alerts",
        "sent",
        "Alerts (archived events for archives) an output delivered: the receiver took them.",
    ),
    (
        CounterMetricFamily,
        "output_retries",
        "retries",
        "Delivery attempts made after a failed one (with a doubling wait).",
    ),
    (
        CounterMetricFamily,
        "output_refused_alerts",
        "refused",
        "Alerts a receiver refused for good (webhook 4xx, SMTP 5xx): logged and passed.",
    ),
)
"""Per-output families: class, name after ``trailwarden_``, key in ``Delivery.snapshot()``,
help."""


def _output_families(outputs: dict[str, dict[str, Any]]) -> Iterator[Any]:
    for kind, name, key, documentation in OUTPUT_METRICS:
        family = kind(f"trailwarden_{name}", documentation, labels=["output"])
        for output, state in sorted(outputs.items()):
            family.add_metric([output], state[key])
        yield family


class ManagerCollector(Collector):
    def __init__(
        self,
        counters: PipelineCounters,
        sessions: Sessions,
        config_store: ConfigStore | None = None,
        ready: Callable[[], tuple[bool, str]] | None = None,
        renewals: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.counters = counters
        self.sessions = sessions
        self.config_store = config_store
        self.ready = ready
        self.renewals = renewals

    def _config_states(self) -> Counter[str] | None:
        if self.config_store is None:
            return None
        try:
            return Counter(s.state for s in self.config_store.statuses())
        except Exception as exc:  # the store is down: readiness says so; skip this family
            log.warning("stage=metrics config states unavailable: %s", exc)
            return None

    def collect(self) -> Iterator[Any]:
        c = self.counters
        with c.lock:
            totals = {
                "batches": c.batches,
                "records_received": c.records,
                "records_analysed": c.analysed,
                "records_duplicate": c.duplicates,
                "records_bad": c.bad_records,
                "alerts_stored": c.alerts,
                "store_failures": c.store_failures,
            }
            fired = Counter(c.rules_fired)
            levels = dict(c.rule_levels)
            in_analysis = c.in_analysis
            outputs = {d.output.name: d.snapshot() for d in c.outputs}
        help_texts = {
            "batches": "Agent batches committed.",
            "records_received": "CloudTrail records received in committed batches.",
            "records_analysed": "Records decoded and run through the rules (new, not duplicates).",
            "records_duplicate": "Records dropped as already stored (eventID + recipient account).",
            "records_bad": "Records refused as unusable (reported with agent, location, index).",
            "alerts_stored": "Alerts stored.",
            "store_failures": "Batch commits the store refused (the batch was not acknowledged).",
        }
        for key, value in totals.items():
            yield CounterMetricFamily(f"trailwarden_{key}", help_texts[key], value=value)
        alerts = CounterMetricFamily(
            "trailwarden_alerts",
            "Alerts raised, by rule and level.",
            labels=["rule_id", "level"],
        )
        for rule_id, count in sorted(fired.items()):
            alerts.add_metric([rule_id, str(levels.get(rule_id, 0))], count)
        yield alerts
        yield _histogram(
            "trailwarden_commit_duration_seconds",
            "Time to commit one batch (events and alerts) to the store.",
            c.commit_seconds.snapshot(),
        )
        yield _histogram(
            "trailwarden_batch_records",
            "Records per committed agent batch.",
            c.batch_records.snapshot(),
        )
        yield GaugeMetricFamily(
            "trailwarden_analysis_queue_batches",
            "Batches submitted to the analysis workers and not finished.",
            value=in_analysis,
        )
        yield from _output_families(outputs)
        yield GaugeMetricFamily(
            "trailwarden_agents_connected", "Agents with a live link.", value=len(self.sessions)
        )
        states = self._config_states()
        if states is not None:
            gauge = GaugeMetricFamily(
                "trailwarden_config_agents",
                "Agents by the state of their central config (pending, applied, failed).",
                labels=["state"],
            )
            for state in CONFIG_STATES:
                gauge.add_metric([state], states.get(state, 0))
            yield gauge
        if self.renewals is not None:
            renewals = CounterMetricFamily(
                "trailwarden_certificate_renewals",
                "Agent certificate renewals over the link: offered, issued, refused requests.",
                labels=["outcome"],
            )
            for outcome, count in self.renewals().items():
                renewals.add_metric([outcome], count)
            yield renewals
        if self.ready is not None:
            ready, _ = self.ready()
            yield GaugeMetricFamily(
                "trailwarden_ready", "1 when the store answers and rules are loaded.", value=ready
            )


def manager_registry(collector: ManagerCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


class Readiness:
    """The store answers and rules are loaded (what /readyz and gRPC health report)."""

    def __init__(self, store_ping: Callable[[], None], rules_loaded: Callable[[], int]) -> None:
        self.store_ping = store_ping
        self.rules_loaded = rules_loaded

    def __call__(self) -> tuple[bool, str]:
        try:
            self.store_ping()
        except Exception as exc:
            return False, f"store unreachable: {exc}"
        rules = self.rules_loaded()
        if rules <= 0:
            return False, "no rules loaded"
        return True, f"store reachable, {rules} rules loaded"


HEALTH_INTERVAL_SECONDS = 2.0
"""How often the gRPC health status follows readiness."""
HEALTH_SERVICES = ("", "trailwarden.v1.AgentLink", "trailwarden.v1.Admin")


class HealthReporter:
    """The standard gRPC health service on the link port, kept in step with readiness.

    ``""`` (the whole server) and each of our services report SERVING while the store answers
    and rules are loaded, NOT_SERVING otherwise, and NOT_SERVING for good once draining starts.
    """

    def __init__(self, readiness: Callable[[], tuple[bool, str]]) -> None:
        from grpc_health.v1 import health

        self.readiness = readiness
        self.servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]  # set at import
        self._last: bool | None = None

    async def run(self) -> None:
        from grpc_health.v1 import health_pb2

        status = health_pb2.HealthCheckResponse
        while True:
            ready, reason = await asyncio.to_thread(self.readiness)
            if ready != self._last:
                log.log(
                    logging.INFO if ready else logging.WARNING,
                    "stage=health %s: %s",
                    "ready" if ready else "not ready",
                    reason,
                )
                self._last = ready
            for service in HEALTH_SERVICES:
                await self.servicer.set(service, status.SERVING if ready else status.NOT_SERVING)
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)

    async def shutdown(self) -> None:
        await self.servicer.enter_graceful_shutdown()
