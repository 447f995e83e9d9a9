"""A real browser (Debian's headless Chromium, driven by Playwright) logs in through the form.

Certificate errors are not ignored: Chromium is told to trust exactly the console's key (its
SPKI hash, ``--ignore-certificate-errors-spki-list``), as a browser that imported the manager's
CA would; any other certificate would still fail.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.fixtures.console import Console
from trailwarden.common import tls

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"


def spki_hash(certificate_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)), the form Chromium's SPKI allow-list takes."""
    spki = (
        tls.load_cert(certificate_pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_logging_in_through_the_form_reaches_the_home_page(console: Console) -> None:
    assert CHROMIUM.exists(), "Debian's chromium is required (.ci/run installs it)"
    sync_api = pytest.importorskip("playwright.sync_api")  # a dev dependency: never skipped in CI
    console.add_user("alice", "admin", PASSWORD)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = f"https://localhost:{console.port}"
    served = (console.running.home.path / "pki" / "server.pem").read_bytes()
    trust = f"--ignore-certificate-errors-spki-list={spki_hash(served)}"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, trust]
        )
        try:
            page = browser.new_context(ignore_https_errors=False).new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/")
            assert page.url == f"{base}/login?next=%2F"
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "wrong password entirely")
            page.click("button[type=submit]")
            assert "Wrong user name or password." in page.inner_text("[role=alert]")
            assert errors == [
                "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
            ]
            errors.clear()
            page.screenshot(path=str(ARTIFACTS / "login-refused.png"))
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            me = page.evaluate("async () => (await fetch('/api/me')).json()")
            assert me == {"name": "alice", "role": "admin"}
            token = page.get_attribute("meta[name=csrf-token]", "content")
            assert token and len(token) >= 40
            cookies = {c["name"]: c for c in page.context.cookies()}
            session = cookies["__Host-tw_session"]
            assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
            page.screenshot(path=str(ARTIFACTS / "home.png"))
            page.click("form.logout button")
            page.wait_for_url(f"{base}/login")
            assert "__Host-tw_session" not in {c["name"] for c in page.context.cookies()}
            assert errors == [], errors  # e.g. a CSP violation or a missing file would show here
        finally:
            browser.close()
    assert (ARTIFACTS / "home.png").stat().st_size > 1000
