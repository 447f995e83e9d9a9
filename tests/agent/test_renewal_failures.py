"""A certificate renewal the agent cannot complete is counted in its Prometheus metrics, not
only logged: a real in-process manager rotates its CA (`manager ca rotate`), offers the linked
agent a renewal over the link, signs its CSR, and the agent cannot store the result (a file
stands where its staging folder goes). Scraped over HTTP and parsed with prometheus_client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.fixtures.system import RunningManager, run_cli, start_link, wait_until
from tests.manager.test_observability import scrape
from trailwarden.agent.identity import STAGED_DIR, AgentIdentity
from trailwarden.agent.observability import AgentCollector, agent_readiness, agent_registry
from trailwarden.agent.renewal import CertificateRenewer
from trailwarden.agent.spool import Spool
from trailwarden.common.observability.config import MetricsConfig
from trailwarden.common.observability.http import ObservabilityServer


def test_a_failed_renewal_is_counted_in_the_agent_metrics_and_the_old_certificate_kept(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    home = enrolled_agent("renew-1")
    before = AgentIdentity.load(home)
    (home / STAGED_DIR).write_text("in the way\n")  # the renewal cannot be staged: OSError
    spool = Spool(home / "spool.db", 10 * 1024**2)
    link = start_link(
        home, running_manager.home.link_address, spool, renewer=CertificateRenewer(home)
    )
    collector = AgentCollector(lambda: [], spool.stats, link.client)
    server = ObservabilityServer(
        MetricsConfig("127.0.0.1:0"), agent_registry(collector), agent_readiness(spool, link.client)
    )
    server.start()
    try:
        assert link.client.connected.wait(30)
        idle = scrape(server.port)
        assert idle[("trailwarden_agent_certificate_renewal_failures_total", ())] == 0
        assert idle[("trailwarden_agent_certificate_renewals_total", ())] == 0

        rotated = run_cli(
            "manager", "ca", "rotate", "--home", str(running_manager.home.path), "--overlap", "7d"
        )
        assert rotated.returncode == 0, rotated.stderr
        # The manager's sweep (every 5 s) offers the renewal; the agent answers, gets its
        # certificate and fails to store it.
        wait_until(lambda: link.client.renewal_failures > 0, "the renewal to fail", timeout=40)
        samples = scrape(server.port)
        assert samples[("trailwarden_agent_certificate_renewal_failures_total", ())] == 1
        assert samples[("trailwarden_agent_certificate_renewals_total", ())] == 0
    finally:
        server.stop()
        link.close()
        spool.close()
    assert AgentIdentity.load(home).cert_pem == before.cert_pem  # the old one is kept
