"""Assemble and run the manager: enrollment server, link+admin server, ingest, web console.

`ManagerServer` is used by `trailwarden manager run` and, in-process, by tests. SIGTERM and
SIGINT drain: stop accepting, let in-flight batches commit and be acknowledged, then stop.
SIGHUP reloads the ruleset (as ``trailwarden admin rules reload`` does).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from trailwarden.common import channels
from trailwarden.common.logs import set_log_format
from trailwarden.common.observability.http import ObservabilityServer
from trailwarden.common.wire import admin_pb2_grpc, enrollment_pb2_grpc, link_pb2_grpc
from trailwarden.manager.admin.certificates_view import CertificateView
from trailwarden.manager.admin.servicer import AdminService
from trailwarden.manager.agents import enrollment
from trailwarden.manager.agents.certificates import AgentCertificates
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.central.distributor import ConfigDistributor
from trailwarden.manager.central.store import ConfigStore
from trailwarden.manager.config import ManagerConfig, load_manager_config
from trailwarden.manager.console.context import ConsoleContext
from trailwarden.manager.console.serving import ConsoleServer
from trailwarden.manager.link.renewal import CertificateRenewal
from trailwarden.manager.link.service import LinkService
from trailwarden.manager.link.sessions import Sessions
from trailwarden.manager.observability import (
    HealthReporter,
    ManagerCollector,
    Readiness,
    manager_registry,
)
from trailwarden.manager.pipeline.analyzer import load_configured_rules
from trailwarden.manager.pipeline.ingest import Ingest, PipelineCounters
from trailwarden.manager.pipeline.reload import RuleReloader
from trailwarden.manager.pipeline.setup import build_analysis, build_outputs, build_store
from trailwarden.manager.pki.live import LivePki
from trailwarden.manager.pki.material import ServerMaterial
from trailwarden.manager.store.retention import retention_loop
from trailwarden.manager.store.sqlite.checkpoint import WalCheckpointer
from trailwarden.manager.store.sqlite.database import Database
from trailwarden.manager.users.accounts import Accounts
from trailwarden.manager.users.setup import build_user_store

log = logging.getLogger(__name__)

DRAIN_SECONDS = 15.0


class ManagerServer:
    def __init__(self, config: ManagerConfig) -> None:
        self.config = config
        # Refuses loose key permissions; follows pki/ (cert renew, ca rotate) while running.
        self.pki = LivePki(config.pki_dir)
        self.database = Database(config.database_path)
        self.registry = Registry(self.database)
        self.renewal = CertificateRenewal(AgentCertificates(self.database), self.pki)
        self.sessions = Sessions()
        self.config_store = ConfigStore(self.database, self.registry)
        self.distributor = ConfigDistributor(self.config_store, self.sessions)
        self.counters = PipelineCounters()
        self.store = build_store(config, self.database)
        self.checkpointer = WalCheckpointer(self.database)
        self.analysis = build_analysis(config, self.store)
        self.rule_reloader = RuleReloader(config.home, self.analysis, load_configured_rules(config))
        self.outputs = list(build_outputs(config, self.store))
        for delivery in self.outputs:
            delivery.prepare()  # before any batch is accepted: a new output misses nothing
        self.counters.outputs = self.outputs
        self.ingest = Ingest(self.store, self.analysis, self.counters, self._outputs_wake)
        # Commits only: analysis runs in the workers (or InlineAnalysis's own thread) and the
        # links await it without holding a thread. Commits are serialised inside Ingest; a
        # second thread has the next commit ready the moment the lock is free.
        self.ingest_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest")
        self.readiness = Readiness(self.store.ping, lambda: self.analysis.rule_count)
        self.health = HealthReporter(self.readiness)
        self.metrics_server: ObservabilityServer | None = None
        self.metrics_port = 0
        self.accounts = Accounts(build_user_store(self.store, self.database, self.registry))
        self.console: ConsoleServer | None = None
        self.link_port = 0
        self.enroll_port = 0
        self.console_port = 0
        """The console's HTTPS port (0 while it is not serving or `[console] enabled = false`)."""
        self._servers: list[grpc.aio.Server] = []
        self._stopped = asyncio.Event()
        self._retention: asyncio.Task[None] | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._renewal_task: asyncio.Task[None] | None = None

    @property
    def material(self) -> ServerMaterial:
        """The PKI in force now (re-read when the files in pki/ change)."""
        return self.pki.material

    def _certificates_changed(self, material: ServerMaterial) -> None:
        self.admin_service.ca_fingerprint = material.ca_fingerprint
        if self.console is not None:
            self.console.reload_certificate()

    def _outputs_wake(self) -> None:
        for delivery in self.outputs:
            delivery.notify()

    async def start(self) -> None:
        material = self.material
        link_server = grpc.aio.server(options=channels.server_options())
        self.link_service = LinkService(
            self.registry,
            self.sessions,
            self.ingest,
            self.ingest_executor,
            ack_window=self.config.ack_window,
            max_connections=self.config.max_connections,
            on_hello=self.distributor.on_hello,
            on_config_status=self.distributor.on_config_status,
            renewal=self.renewal,
        )
        link_pb2_grpc.add_AgentLinkServicer_to_server(self.link_service, link_server)
        self.admin_service = AdminService(
            registry=self.registry,
            sessions=self.sessions,
            alert_store=self.store,
            enroll_address=self.config.enrollment.advertise,
            ca_fingerprint=material.ca_fingerprint,
            pipeline_stats=self.counters,
            config_store=self.config_store,
            distributor=self.distributor,
            accounts=self.accounts,
        )
        self.admin_service.rule_reloader = self.rule_reloader
        self.admin_service.certificate_view = CertificateView(self.renewal.certificates, self.pki)
        # The pin printed with a new token follows the server certificate's issuer.
        self.pki.on_change(self._certificates_changed)
        admin_pb2_grpc.add_AdminServicer_to_server(self.admin_service, link_server)
        from grpc_health.v1 import health_pb2_grpc

        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, link_server)
        mtls = self.pki.server_credentials(require_client_auth=True)
        self.link_port = link_server.add_secure_port(self.config.link.listen, mtls)

        enroll_server = grpc.aio.server(
            options=enrollment.server_options(),
            maximum_concurrent_rpcs=enrollment.MAX_CONCURRENT_CALLS,
        )
        enrollment_pb2_grpc.add_EnrollmentServicer_to_server(
            enrollment.EnrollmentService(self.registry, self.pki, self.config.link.advertise),
            enroll_server,
        )
        server_tls = self.pki.server_credentials(require_client_auth=False)
        self.enroll_port = enroll_server.add_secure_port(self.config.enrollment.listen, server_tls)
        self._servers = [link_server, enroll_server]
        if self.config.console.enabled:
            # Before the gRPC servers: a console port in use fails the start with nothing
            # half-running.
            self.console = ConsoleServer(
                ConsoleContext(
                    store=self.store,
                    registry=self.registry,
                    link_sessions=self.sessions,
                    config=self.config,
                    users=self.accounts,
                    manager_loop=asyncio.get_running_loop(),
                    running_rules=lambda: self.rule_reloader.current,
                )
            )
            self.console_port = await asyncio.to_thread(self.console.start)
        for server in self._servers:
            await server.start()
        self._retention = asyncio.create_task(
            retention_loop(self.store, self.store.retention.interval_seconds)
        )
        self.checkpointer.start()
        self._health_task = asyncio.create_task(self.health.run())
        self._renewal_task = asyncio.create_task(self.renewal.run(self.sessions))
        if self.config.metrics.enabled:
            collector = ManagerCollector(
                self.counters,
                self.sessions,
                self.config_store,
                self.readiness,
                renewals=self.renewal.outcomes,
            )
            self.metrics_server = ObservabilityServer(
                self.config.metrics, manager_registry(collector), self.readiness
            )
            self.metrics_server.start()
            self.metrics_port = self.metrics_server.port
        for delivery in self.outputs:
            delivery.start()
        log.info(
            "stage=start manager=%s link=%s (port %d) enrollment=%s (port %d) ca_sha256=%s",
            self.config.name,
            self.config.link.listen,
            self.link_port,
            self.config.enrollment.listen,
            self.enroll_port,
            material.ca_fingerprint,
        )

    async def stop(self, grace: float = DRAIN_SECONDS) -> None:
        """Drain: refuse new calls, give in-flight batches ``grace`` seconds, then stop."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._retention is not None:
            self._retention.cancel()
        if self._health_task is not None:
            self._health_task.cancel()
        if self._renewal_task is not None:
            self._renewal_task.cancel()
        await self.health.shutdown()  # NOT_SERVING: balancers stop sending new agents here
        if self.console is not None:
            await asyncio.to_thread(self.console.stop)
        # Drain: every link finishes and acknowledges the batches it already holds, then
        # closes; agents resend anything else to the next manager (nothing is lost either way).
        for session in self.sessions.all():
            session.drain()
        deadline = asyncio.get_running_loop().time() + grace
        while len(self.sessions) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for session in self.sessions.all():
            session.close("manager shutting down")
        await asyncio.gather(*(server.stop(min(grace, 2.0)) for server in self._servers))
        await self.distributor.close()
        await asyncio.to_thread(self.ingest_executor.shutdown, True)
        await asyncio.to_thread(self.analysis.close)
        for delivery in self.outputs:
            await asyncio.to_thread(delivery.stop)
        await asyncio.to_thread(self.checkpointer.stop)
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.stop)
        # Registry bookkeeping of the last links (asyncio.to_thread) may still be running on
        # its database connection; closing the database under it crashed the process (SIGSEGV).
        await asyncio.get_running_loop().shutdown_default_executor()
        self.store.close()
        self.database.close()
        log.info("stage=stop manager stopped")

    async def wait(self) -> None:
        await self._stopped.wait()


async def serve(home: Path, *, debug: bool = False) -> None:
    config = load_manager_config(home)
    if not debug:  # --debug on the command line wins over manager.toml, as for the agent
        logging.getLogger().setLevel(config.log_level)
    set_log_format(config.log_format)
    server = ManagerServer(config)
    await server.start()
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[Any]] = []

    def on_signal(sig: signal.Signals) -> None:
        stopping.append(asyncio.ensure_future(_stop(server, sig)))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    reloads: list[asyncio.Future[Any]] = []

    def on_hangup() -> None:
        log.info("stage=rules received SIGHUP: reloading the ruleset")
        reloads.append(asyncio.ensure_future(asyncio.to_thread(server.rule_reloader.reload)))

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    await server.wait()
    if stopping:
        await asyncio.gather(*stopping)


async def _stop(server: ManagerServer, sig: signal.Signals) -> None:
    log.info("stage=stop received %s: draining", sig.name)
    await server.stop()


class BackgroundManager:
    """A ManagerServer on its own event loop thread (tests, demo)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, daemon=True, name="manager-loop"
        )
        self.server: ManagerServer | None = None

    def start(self) -> ManagerServer:
        self.thread.start()
        config = load_manager_config(self.home)

        async def create() -> ManagerServer:
            server = ManagerServer(config)
            await server.start()
            return server

        self.server = asyncio.run_coroutine_threadsafe(create(), self.loop).result(30)
        return self.server

    def stop(self, grace: float = 2.0) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
