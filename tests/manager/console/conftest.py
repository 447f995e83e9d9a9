"""A real manager on loopback holding real alerts, its console, and one headless Chromium.

Module-scoped (one manager, one console, one browser per test module) to keep the suite fast:
the alerts come from real CloudTrail records (tests/files/console) sent by an enrolled agent's
real link client over mutual TLS, through the manager's ingest pipeline and rules.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fixtures.system import LinkThread, ManagerHome, make_manager_home, start_link
from trailwarden.agent.enroll import enroll
from trailwarden.agent.spool import Spool
from trailwarden.common.model import SourceMeta
from trailwarden.manager.server import BackgroundManager, ManagerServer

FILES = Path(__file__).resolve().parents[2] / "files"
SUBSET = FILES / "console" / "invictus-subset.json.gz"
EVENTS = FILES / "events"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
BUCKETS = ("trail-bucket-prod", "trail-bucket-audit")


def records_of(path: Path) -> list[bytes]:
    """The records of a CloudTrail object file (gzipped or not); a missing file fails loudly."""
    if not path.is_file():
        raise FileNotFoundError(f"test data missing: {path}")
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return [json.dumps(r).encode() for r in json.loads(data)["Records"]]


@dataclass
class ConsoleSystem:
    """The manager, its enrolled agent's link, and how to send it more records."""

    background: BackgroundManager
    home: ManagerHome
    agent_home: Path
    spool: Spool
    link: LinkThread
    sent: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def server(self) -> ManagerServer:
        assert self.background.server is not None
        return self.background.server

    def send(self, records: list[bytes], bucket: str, key: str) -> None:
        meta = SourceMeta(
            source="trail", bucket=bucket, key=key, account_id="123456789012", region="us-east-1"
        )
        self.spool.put(meta, records)
        self.sent += len(records)

    def wait_for_alerts(self, at_least: int, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        count = 0
        while time.monotonic() < deadline:
            count = self.server.store.counts()["alerts"]
            if count >= at_least:
                return count
            time.sleep(0.1)
        raise TimeoutError(f"only {count} alerts stored after {timeout}s (wanted {at_least})")


@pytest.fixture(scope="module")
def console_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSystem]:
    root = tmp_path_factory.mktemp("console-system")
    home = make_manager_home(root / "manager")
    background = BackgroundManager(home.path)
    background.start()
    try:
        server = background.server
        assert server is not None
        token = server.registry.create_token(3600, 1, "", "test").token
        agent_home = root / "agent"
        enroll(agent_home, home.enroll_address, token, home.ca_fingerprint, "web-1")
        spool = Spool(agent_home / "spool.db", 64 << 20)
        link = start_link(agent_home, home.link_address, spool, heartbeat_seconds=1.0)
        system = ConsoleSystem(background, home, agent_home, spool, link)
        subset = records_of(SUBSET)
        half = len(subset) // 2
        system.send(subset[:half], BUCKETS[0], "AWSLogs/123456789012/CloudTrail/a.json.gz")
        system.send(subset[half:], BUCKETS[1], "AWSLogs/123456789012/CloudTrail/b.json.gz")
        system.wait_for_alerts(150)
        try:
            yield system
        finally:
            link.close()
            spool.close()
    finally:
        background.stop()


# ---- the console in the browser -------------------------------------------------------------


def spki_pin(cert_pem: bytes) -> str:
    """base64 SHA-256 of the certificate's public key: Chromium trusts exactly this certificate
    (``--ignore-certificate-errors-spki-list``), not every certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@dataclass
class ConsoleSite:
    """The manager's own console (HTTPS) and its users."""

    system: ConsoleSystem
    url: str
    passwords: dict[str, str]

    def login(self, browser: Any, user: str, path: str = "/") -> Any:
        """A new browser page signed in as ``user`` through the login form, at ``path``."""
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.js_errors = errors
        page.goto(f"{self.url}/login?next={quote(path, safe='')}")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", self.passwords[user])
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state("networkidle")
        return page


@pytest.fixture(scope="module")
def site(console_system: ConsoleSystem) -> ConsoleSite:
    server = console_system.server
    assert server.console_port, "the manager's console is not serving"
    passwords = {}
    for name, role in (("alice", "admin"), ("victor", "viewer")):
        _, new = server.accounts.add(name, role, "", "admin:test")
        passwords[name] = new.generated
    return ConsoleSite(console_system, f"https://localhost:{server.console_port}", passwords)


@pytest.fixture(scope="module")
def browser(console_system: ConsoleSystem) -> Iterator[Any]:
    """One headless Chromium for the whole module (Debian's, driven by Playwright), trusting
    the manager's own server certificate by its public key."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install chromium")
    pin = spki_pin((console_system.server.config.pki_dir / "server.pem").read_bytes())
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"]
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the page under test-artifacts/console/ (git-ignored) for a human to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
