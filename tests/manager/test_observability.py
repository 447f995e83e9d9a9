"""Metrics and health of a real manager and a real agent process, scraped over HTTP and parsed
with prometheus_client's own parser; readiness flips when the store goes away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.system import free_port, make_manager_home
from tests.reliability.processes import write_agent_toml, write_trail_files
from trailwarden.agent.enroll import enroll
from trailwarden.common import channels, tls
from trailwarden.common.errors import ConfigError
from trailwarden.common.observability.config import parse_metrics_section
from trailwarden.common.tomlconfig import Section
from trailwarden.manager.server import BackgroundManager, ManagerServer


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sample name + labels -> value, from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def get(port: int, path: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def observed_manager(tmp_path: Path) -> Iterator[tuple[ManagerServer, Path]]:
    home = make_manager_home(tmp_path / "manager")
    with (home.path / "manager.toml").open("a") as handle:
        handle.write('\n[metrics]\nlisten = "127.0.0.1:0"\n')
    background = BackgroundManager(home.path)
    server = background.start()
    try:
        yield server, home.path
    finally:
        background.stop()


def test_metrics_count_exactly_the_records_an_agent_sends(
    observed_manager: tuple[ManagerServer, Path], tmp_path: Path
) -> None:
    server, manager_path = observed_manager
    port = server.metrics_port
    assert port > 0
    before = scrape(port)
    assert before[("trailwarden_records_received_total", ())] == 0
    assert before[("trailwarden_agents_connected", ())] == 0
    for outcome in ("offered", "issued", "refused"):
        key = ("trailwarden_certificate_renewals_total", (("outcome", outcome),))
        assert before[key] == 0

    token = server.registry.create_token(3600, 1, "", "test").token
    agent_home = tmp_path / "agent"
    enroll(agent_home, f"127.0.0.1:{server.enroll_port}", token, _fingerprint(manager_path), "a1")
    ids = write_trail_files(tmp_path / "trail", files=3, per_file=7)
    agent_port = free_port()
    write_agent_toml(
        agent_home,
        _home_of(server),
        [{"type": "directory", "name": "local", "path": str(tmp_path / "trail")}],
    )
    with (agent_home / "agent.toml").open("a") as handle:
        handle.write(f'[metrics]\nlisten = "{agent_port}"\n')  # a bare port: loopback
    log_file = (tmp_path / "agent.log").open("w")
    agent = subprocess.Popen(
        [sys.executable, "-m", "trailwarden.common.cli", "agent", "run", "--home", str(agent_home)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_until(
            lambda: scrape(port)[("trailwarden_records_received_total", ())] >= len(ids),
            what="the records at the manager",
        )
        after = scrape(port)
        assert after[("trailwarden_records_received_total", ())] == len(ids) == 21
        assert after[("trailwarden_records_analysed_total", ())] == 21
        assert after[("trailwarden_records_duplicate_total", ())] == 0
        assert after[("trailwarden_agents_connected", ())] == 1
        by_rule = {
            dict(labels)["rule_id"]: (dict(labels)["level"], value)
            for (name, labels), value in after.items()
            if name == "trailwarden_alerts_total"
        }
        assert (
            sum(value for _, value in by_rule.values())
            == after[("trailwarden_alerts_stored_total", ())]
        )
        assert all(level.isdigit() and int(level) > 0 for level, _ in by_rule.values())
        batches = after[("trailwarden_batches_total", ())]
        assert after[("trailwarden_commit_duration_seconds_count", ())] == batches >= 1
        assert after[("trailwarden_batch_records_sum", ())] == 21

        # The agent's own endpoint, on loopback: what it collected and that it is linked.
        wait_until(lambda: get(agent_port, "/readyz")[0] == 200, what="the agent to report ready")
        agent_samples = scrape(agent_port)
        source = (("source", "local"), ("type", "directory"))
        assert agent_samples[("trailwarden_agent_records_total", source)] == 21
        assert agent_samples[("trailwarden_agent_objects_total", source)] == 3
        assert agent_samples[("trailwarden_agent_link_up", ())] == 1
        assert get(agent_port, "/healthz")[0] == 200
    finally:
        agent.terminate()
        agent.wait(30)
        log_file.close()


def test_readiness_and_grpc_health_flip_when_the_store_goes_away(
    observed_manager: tuple[ManagerServer, Path],
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server, manager_path = observed_manager
    port = server.metrics_port
    assert get(port, "/healthz") == (200, {"status": "alive"})
    code, body = get(port, "/readyz")
    assert code == 200 and "rules loaded" in body["reason"]

    bundle = tls.AdminBundle.load(manager_path / "admin.credentials")

    def grpc_status() -> int:
        creds = channels.client_channel_credentials(bundle.ca_pem, bundle.cert_pem, bundle.key_pem)
        with grpc.secure_channel(
            f"127.0.0.1:{server.link_port}", creds, options=channels.channel_options("localhost")
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status)

    serving = health_pb2.HealthCheckResponse.SERVING
    wait_until(lambda: grpc_status() == serving, what="gRPC health SERVING")

    # The database file goes away and a folder takes its name, so no new connection can open
    # (or create) it; the manager's open connections keep the moved file and its WAL intact.
    database = manager_path / "manager.db"
    moved = manager_path / "manager.db.away"
    database.rename(moved)
    database.mkdir()
    try:
        code, body = get(port, "/readyz")
        assert code == 503 and "store unreachable" in body["reason"]
        samples = scrape(port)
        assert samples[("trailwarden_ready", ())] == 0
        wait_until(
            lambda: grpc_status() == health_pb2.HealthCheckResponse.NOT_SERVING,
            what="gRPC health NOT_SERVING",
        )
    finally:
        database.rmdir()
        moved.rename(database)
    assert get(port, "/readyz")[0] == 200
    wait_until(lambda: grpc_status() == serving, what="gRPC health SERVING again")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nowhere", timeout=10)
    assert missing.value.code == 404
    missing.value.close()


@pytest.mark.parametrize(
    ("raw", "listen"),
    [(9750, "127.0.0.1:9750"), ("9751", "127.0.0.1:9751"), ("0.0.0.0:9750", "0.0.0.0:9750")],
)
def test_a_bare_port_means_loopback(raw: object, listen: str) -> None:
    assert parse_metrics_section(Section({"metrics": {"listen": raw}}, "m.toml")).listen == listen


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"listen": "host:99999"}, "0 to 65535"),
        ({"listen": "host:http"}, "0 to 65535"),
        ({"listen": True}, "host:port"),
        ({"listen": "9750", "port": 1}, "unknown key"),
    ],
)
def test_bad_metrics_settings_are_refused_with_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_metrics_section(Section({"metrics": section}, "m.toml"))
    assert "m.toml" in str(caught.value) and "metrics" in str(caught.value)


def test_metrics_are_off_unless_configured() -> None:
    assert not parse_metrics_section(Section({}, "m.toml")).enabled


def _fingerprint(manager_path: Path) -> str:
    return tls.fingerprint((manager_path / "pki" / "ca.pem").read_bytes())


def _home_of(server: ManagerServer):
    from dataclasses import dataclass

    @dataclass
    class _Home:
        link_address: str

    return _Home(f"127.0.0.1:{server.link_port}")


def test_manager_status_reports_serving_and_ready(
    observed_manager: tuple[ManagerServer, Path],
) -> None:
    from tests.fixtures.system import run_cli

    server, manager_path = observed_manager
    toml = (manager_path / "manager.toml").read_text()
    # The home's manager.toml says port 0 (the test's); point status at the bound port.
    (manager_path / "manager.toml").write_text(
        toml.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{server.metrics_port}"')
    )
    result = run_cli("manager", "status", "--home", str(manager_path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["link"]["state"] == "serving"
    assert report["readiness"]["state"] == "ready"
    text = run_cli("manager", "status", "--home", str(manager_path))
    assert text.returncode == 0 and ": ok" in text.stdout


def test_manager_status_says_when_nothing_answers(tmp_path: Path) -> None:
    from tests.fixtures.system import run_cli

    home = make_manager_home(tmp_path / "stopped")
    result = run_cli("manager", "status", "--home", str(home.path))
    assert result.returncode == 1
    assert "NOT OK" in result.stdout and "not answering" in result.stdout
    assert "Traceback" not in result.stderr


def test_agent_status_shows_identity_certificate_and_spool(
    observed_manager: tuple[ManagerServer, Path], tmp_path: Path
) -> None:
    from tests.fixtures.system import run_cli

    server, manager_path = observed_manager
    token = server.registry.create_token(3600, 1, "", "test").token
    home = tmp_path / "agent-s"
    enroll(home, f"127.0.0.1:{server.enroll_port}", token, _fingerprint(manager_path), "s1")
    result = run_cli("agent", "status", "--home", str(home), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["name"] == "s1" and report["certificate_days_left"] > 300
    assert report["spool_waiting"] == {"batches": 0, "records": 0, "bytes": 0}
    with (home / "agent.toml").open("a") as handle:
        handle.write(f'[metrics]\nlisten = "{free_port()}"\n')  # configured, but not running
    down = run_cli("agent", "status", "--home", str(home))
    assert down.returncode == 1 and "not answering" in down.stdout
