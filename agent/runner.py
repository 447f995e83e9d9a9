"""Run an agent: sources → spool → link, with status reports and a clean drain on stop.

`run` keeps collecting on each source's interval; `run_once` does one pass over every source
and returns when the manager has acknowledged every spooled record (cron, backfills).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import asdict, dataclass

from trailwarden import agent as agent_package
from trailwarden.agent.applier import ConfigApplier
from trailwarden.agent.collector import Collector
from trailwarden.agent.config import AgentConfig
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.link import HelloInfo, LinkClient
from trailwarden.agent.observability import AgentCollector, agent_readiness, agent_registry
from trailwarden.agent.progress import Progress, ServiceProgress
from trailwarden.agent.renewal import CertificateRenewer
from trailwarden.agent.spool import Spool
from trailwarden.agent.status import SourceStatus
from trailwarden.common.errors import AgentRefusedError
from trailwarden.common.observability.http import ObservabilityServer
from trailwarden.common.wire import link_pb2

log = logging.getLogger(__name__)

DRAIN_SECONDS = 10.0
"""On stop, how long to wait for the manager to acknowledge what is in flight."""

CONFIG_WAIT_SECONDS = 15.0
"""``run --once``: how long the pass waits for the manager to say which config to run (a
pushed revision is applied first, so the pass covers the sources it names); past that the pass
runs on the config the agent has, and what it spools waits for the manager as before."""


def source_status_to_wire(status: SourceStatus) -> link_pb2.SourceStatus:
    fields = {k: v for k, v in asdict(status).items() if v is not None}
    problems = fields.pop("problems")
    known = {f.name for f in link_pb2.SourceStatus.DESCRIPTOR.fields}
    return link_pb2.SourceStatus(
        **{k: v for k, v in fields.items() if k in known},
        problems=[link_pb2.Problem(**p) for p in problems],
    )


@dataclass
class OnceResult:
    objects: int
    records: int
    failed: int
    acked_batches: int
    errors: tuple[str, ...] = ()


class AgentRunner:
    def __init__(self, config: AgentConfig, identity: AgentIdentity) -> None:
        self.config = config
        self.identity = identity
        self.spool = Spool(config.spool_path, config.spool_limit_bytes)
        self.collector = Collector(config.sources, self.spool, state_dir=config.home)
        # Resumes the saved central revision (if any) before the collector's first pass.
        self.applier = ConfigApplier(config.home, self.collector, config.sources)
        self.link = LinkClient(
            identity,
            config.manager_address,
            self.spool,
            HelloInfo(
                version=agent_package.__version__,
                hostname=socket.gethostname(),
                applied_revision=self.applier.applied,
            ),
            server_name=config.server_name,
            heartbeat_seconds=config.heartbeat_seconds,
            status=self.status,
            on_config=self.applier.apply,
            on_refused=self._refused,
            renewer=CertificateRenewer(config.home),
        )
        self.metrics_server: ObservabilityServer | None = None
        if config.metrics.enabled:
            collector = AgentCollector(self.collector.status, self.spool.stats, self.link)
            self.metrics_server = ObservabilityServer(
                config.metrics, agent_registry(collector), agent_readiness(self.spool, self.link)
            )
        self.service_progress: ServiceProgress | None = None
        if config.progress_log_seconds:
            self.service_progress = ServiceProgress(
                self.collector.status, config.progress_log_seconds
            )
        self.stop_event = threading.Event()
        self._link_stop = threading.Event()
        self._link_thread = threading.Thread(
            target=self.link.run, args=(self._link_stop,), daemon=True, name="link"
        )

    def status(self) -> link_pb2.AgentStatus:
        spool = self.spool.stats()
        return link_pb2.AgentStatus(
            spool_bytes=spool.bytes,
            spool_batches=spool.batches,
            spool_limit_bytes=spool.limit_bytes,
            fetching_paused=spool.paused,
            sources=[source_status_to_wire(s) for s in self.collector.status()],
        )

    def _refused(self) -> None:
        """The manager refuses us for good: stop collecting (AgentRefusedError after drain)."""
        self.stop_event.set()

    def _raise_if_refused(self) -> None:
        if self.link.refused:
            raise AgentRefusedError(self.link.refused)

    def run(self) -> None:
        """Collect and forward until ``stop_event`` is set, then drain and stop; raises
        AgentRefusedError when the manager refuses this agent for good."""
        log.info(
            "stage=start agent=%s name=%s manager=%s sources=%d",
            self.identity.agent_id,
            self.identity.name,
            self.config.manager_address,
            len(self.config.sources),
        )
        self._link_thread.start()
        if self.metrics_server is not None:
            self.metrics_server.start()
        self.collector.start()
        if self.service_progress is not None:
            self.service_progress.start()
        self.stop_event.wait()
        if self.service_progress is not None:
            self.service_progress.stop()
        self.shutdown()
        self._raise_if_refused()

    def run_once(self, progress: bool = False) -> OnceResult:
        """One pass over every source; returns once every spooled record is acknowledged.

        ``progress`` shows objects, records, bytes and rate while it runs (a live line on a
        terminal, periodic log lines otherwise).
        """
        display = Progress(self.collector.status, self.spool.stats) if progress else None
        self._link_thread.start()
        if display is not None:
            display.start()
        try:
            self._await_central_config()
            result = self.collector.run_once(self.stop_event)
            waiting_logged = 0.0
            # Every record acknowledged, and (SQS) every message of them deleted.
            while not self.stop_event.is_set() and (
                self.spool.stats().batches or self.collector.outstanding()
            ):
                down = not self.link.connected.is_set() and self.link.last_error
                if down and time.monotonic() - waiting_logged > 10:
                    log.info("stage=send waiting for the manager: %s", self.link.last_error)
                    waiting_logged = time.monotonic()
                self.stop_event.wait(0.1)
        finally:
            if display is not None:
                display.stop()
        self.shutdown()
        self._raise_if_refused()
        return OnceResult(
            objects=result.objects_done,
            records=result.records_spooled,
            failed=result.objects_failed,
            acked_batches=self.link.acked_batches,
            errors=result.errors,
        )

    def _await_central_config(self) -> None:
        """Before a one-off pass: let a config the manager pushes on connect be applied first."""
        deadline = time.monotonic() + CONFIG_WAIT_SECONDS
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            if self.link.config_settled.wait(0.1):
                return
        if not self.stop_event.is_set():
            log.warning(
                "stage=config no word from the manager in %.0f s: this pass runs on the config "
                "the agent has (%s)",
                CONFIG_WAIT_SECONDS,
                self.link.last_error or "not connected",
            )

    def shutdown(self) -> None:
        self.collector.stop()
        self.link.report_now()  # the manager sees the final source states and problems
        deadline = time.monotonic() + DRAIN_SECONDS
        while (
            self.link.connected.is_set()
            and self.spool.stats().batches
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        self.collector.settle(max(0.0, deadline - time.monotonic()))
        self._link_stop.set()
        if self._link_thread.is_alive():
            self._link_thread.join(DRAIN_SECONDS)
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.spool.close()
        log.info("stage=stop agent stopped")
