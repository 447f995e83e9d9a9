"""What the agent tells Prometheus and health probes (``[metrics]`` in agent.toml).

Read at scrape time from the collector's source trackers, the spool and the link, so collecting
carries no metrics library. Labels are the configured source names and their types (bounded by
agent.toml and central config), never buckets, keys or accounts.

Ready: the spool answers and the link to the manager is up (an agent that cannot send is
collecting into its spool, which an operator wants to know).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from trailwarden.agent.link import LinkClient
from trailwarden.agent.spool import Spool, SpoolStats
from trailwarden.agent.status import SourceStatus

SOURCE_STATES = ("idle", "running", "paused", "failed", "stopped")


class AgentCollector(Collector):
    def __init__(
        self,
        sources: Callable[[], Sequence[SourceStatus]],
        spool: Callable[[], SpoolStats],
        link: LinkClient,
    ) -> None:
        self.sources = sources
        self.spool = spool
        self.link = link

    def collect(self) -> Iterator[Any]:
        statuses = list(self.sources())
        labels = ["source", "type"]

        def family(kind: type, name: str, documentation: str) -> Any:
            return kind(name, documentation, labels=labels)

        objects = family(CounterMetricFamily, "trailwarden_agent_objects", "Log objects collected.")
        failed = family(
            CounterMetricFamily, "trailwarden_agent_objects_failed", "Log objects that failed."
        )
        skipped = family(
            CounterMetricFamily,
            "trailwarden_agent_objects_skipped",
            "Objects passed over by design (digests, non-log files).",
        )
        records = family(
            CounterMetricFamily, "trailwarden_agent_records", "Records put in the spool."
        )
        discarded = family(
            CounterMetricFamily,
            "trailwarden_agent_records_discarded",
            "Records dropped by discard rules.",
        )
        refused = family(
            CounterMetricFamily,
            "trailwarden_agent_records_refused",
            "Single records refused as unusable; the rest of their objects delivered.",
        )
        late = family(
            CounterMetricFamily,
            "trailwarden_agent_objects_late",
            "Objects found by a reconcile, older than late_window (collected).",
        )
        too_large = family(
            CounterMetricFamily,
            "trailwarden_agent_objects_refused_size",
            "Objects refused for inflating past the size guard (also in objects_failed).",
        )
        read = family(
            CounterMetricFamily, "trailwarden_agent_read_bytes", "Object bytes downloaded."
        )
        duration = family(
            GaugeMetricFamily,
            "trailwarden_agent_pass_duration_seconds",
            "How long the source's last finished pass took.",
        )
        last_ok = family(
            GaugeMetricFamily,
            "trailwarden_agent_last_success_timestamp_seconds",
            "When the source's last pass finished without failing (Unix time; 0 = never).",
        )
        state = GaugeMetricFamily(
            "trailwarden_agent_source_state",
            "1 for the state each source is in now.",
            labels=[*labels, "state"],
        )
        for status in statuses:
            key = [status.name, status.type]
            objects.add_metric(key, status.objects_done)
            failed.add_metric(key, status.objects_failed)
            skipped.add_metric(key, status.objects_skipped)
            records.add_metric(key, status.records_spooled)
            discarded.add_metric(key, status.records_discarded)
            refused.add_metric(key, status.records_refused)
            late.add_metric(key, status.objects_late)
            too_large.add_metric(key, status.objects_refused_size)
            read.add_metric(key, status.bytes_read)
            duration.add_metric(key, status.last_pass_seconds)
            last_ok.add_metric(key, status.last_success_unix_ms / 1000)
            for name in SOURCE_STATES:
                state.add_metric([*key, name], 1 if status.state == name else 0)
        yield from (objects, failed, skipped, records, discarded, refused, late, too_large)
        yield from (read, duration, last_ok, state)

        spool = self.spool()
        yield GaugeMetricFamily(
            "trailwarden_agent_spool_bytes", "Record bytes waiting for acks.", value=spool.bytes
        )
        yield GaugeMetricFamily(
            "trailwarden_agent_spool_batches", "Batches waiting for acks.", value=spool.batches
        )
        yield GaugeMetricFamily(
            "trailwarden_agent_spool_limit_bytes",
            "The spool's configured bound.",
            value=spool.limit_bytes,
        )
        yield GaugeMetricFamily(
            "trailwarden_agent_fetching_paused", "1 while the spool is full.", value=spool.paused
        )
        yield CounterMetricFamily(
            "trailwarden_agent_spool_full_waits",
            "Times fetching paused for spool space.",
            value=spool.full_waits,
        )
        yield GaugeMetricFamily(
            "trailwarden_agent_unacked_bytes",
            "Record bytes sent to the manager and not acknowledged yet.",
            value=self.link.unacked_bytes,
        )
        yield GaugeMetricFamily(
            "trailwarden_agent_link_up",
            "1 while the link to the manager is up.",
            value=self.link.connected.is_set(),
        )
        yield CounterMetricFamily(
            "trailwarden_agent_acked_batches",
            "Batches the manager acknowledged.",
            value=self.link.acked_batches,
        )
        yield CounterMetricFamily(
            "trailwarden_agent_certificate_renewals",
            "Certificates renewed over the link and stored.",
            value=self.link.renewals,
        )
        yield CounterMetricFamily(
            "trailwarden_agent_certificate_renewal_failures",
            "Certificate renewals that failed; the current certificate was kept.",
            value=self.link.renewal_failures,
        )


def agent_registry(collector: AgentCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def agent_readiness(spool: Spool, link: LinkClient) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        try:
            stats = spool.stats()
        except Exception as exc:
            return False, f"spool unusable: {exc}"
        if link.refused:
            return False, f"the manager refuses this agent: {link.refused}"
        if not link.connected.is_set():
            return False, f"not linked to the manager ({link.last_error or 'connecting'})"
        return True, f"linked to {link.address}; spool holds {stats.batches} batches"

    return check
