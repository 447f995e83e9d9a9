"""Two manager processes on one PostgreSQL store share console users and sessions.

Both homes are made by `trailwarden manager init --store URL` (each with its own CA and
console certificate: the HTTPS client of each console trusts that manager's own ca.pem, no
verification is turned off). A user added through one manager's Admin API logs in to the
other's console; a session made on one is accepted by the other; a user removed on one is
locked out of both. Each manager's audit log (still in its own manager.db) names what was
done through it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import psycopg

from tests.fixtures.console import ConsoleClient
from tests.fixtures.system import ManagerHome, ManagerProcess, free_port, run_cli, wait_for_port
from trailwarden.manager.home import InitResult

PASSWORD = "correct horse battery staple"


def init_by_cli(path: Path, store_url: str) -> tuple[ManagerHome, int]:
    """`manager init --store URL` on free loopback ports; the home and its console port."""
    link, enroll, console = free_port(), free_port(), free_port()
    done = run_cli(
        "manager", "init", "--home", str(path), "--server-name", "localhost",
        "--listen-host", "127.0.0.1", "--link-port", str(link), "--enroll-port", str(enroll),
        "--console-port", str(console), "--store", store_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    credentials = re.search(r"^admin credentials: (\S+)", done.stdout, re.MULTILINE)
    fingerprint = re.search(r"^CA SHA-256: +(\S+)", done.stdout, re.MULTILINE)
    assert credentials and fingerprint, done.stdout
    toml = path / "manager.toml"
    # One analysis thread in-process: this test is about the console, not ingest throughput.
    toml.write_text(toml.read_text().replace("analysis_workers = 0", "analysis_workers = 1"))
    result = InitResult(
        path, fingerprint.group(1), Path(credentials.group(1)), f"127.0.0.1:{link}",
        f"127.0.0.1:{enroll}",
    )  # fmt: skip
    return ManagerHome(path, result, link, enroll), console


def admin(home: ManagerHome, *args: str, stdin: str | None = None) -> Any:
    done = run_cli("admin", *args, "--credentials", str(home.credentials), input_text=stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def audit_actions(home: ManagerHome) -> list[tuple[str, str]]:
    entries = json.loads(admin(home, "audit", "--json").stdout)
    return [(e["action"], e["target"]) for e in entries if e["action"].startswith("user.")]


def test_two_managers_on_one_store_share_console_users_and_sessions(
    tmp_path: Path, postgres_url: str
) -> None:
    home_a, console_a = init_by_cli(tmp_path / "a", postgres_url)
    home_b, console_b = init_by_cli(tmp_path / "b", postgres_url)
    assert home_a.ca_fingerprint != home_b.ca_fingerprint  # two CAs: a shared one is not done
    with psycopg.connect(postgres_url) as conn:  # init migrated the users' tables too
        versions = dict(
            conn.execute(
                "SELECT component, MAX(version) FROM schema_version GROUP BY component"
            ).fetchall()
        )
    assert versions["console_users"] == 1 and "alerts" in versions
    managers = [
        ManagerProcess(home_a, tmp_path / "a.log"),
        ManagerProcess(home_b, tmp_path / "b.log"),
    ]
    try:
        for manager, port in zip(managers, (console_a, console_b), strict=True):
            manager.start()
            wait_for_port(port)
        admin(home_a, "user", "add", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD)
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT role FROM console_users WHERE name = 'alice'").fetchone()
        assert row == ("admin",)  # in PostgreSQL ...
        for home in (home_a, home_b):  # ... and in neither manager.db
            assert b"alice" not in (home.path / "manager.db").read_bytes()

        # Added through A, logs in on B.
        on_b = ConsoleClient(console_b, home_b.path / "pki" / "ca.pem")
        assert on_b.login("alice", PASSWORD).status == 303
        assert on_b.request("GET", "/").status == 200
        assert on_b.login("alice", "not the password at all").status != 303

        # The session B made is accepted by A (the cookie moved to the other console).
        on_a = ConsoleClient(console_a, home_a.path / "pki" / "ca.pem", cookies=dict(on_b.cookies))
        assert on_a.request("GET", "/").status == 200
        listed = json.loads(admin(home_a, "user", "list", "--json").stdout)
        assert [(u["name"], u["active_sessions"]) for u in listed] == [("alice", 1)]

        # Removed through B: the session ends on both consoles.
        admin(home_b, "user", "remove", "alice")
        assert on_a.request("GET", "/").status == 303
        assert on_b.request("GET", "/").status == 303
        assert on_b.login("alice", PASSWORD).status != 303

        # Each change is audited on the manager it was made through.
        assert audit_actions(home_a) == [("user.add", "alice")]
        assert audit_actions(home_b) == [("user.remove", "alice")]
        for manager in managers:
            assert manager.terminate() == 0
    finally:
        for manager in managers:
            if manager.proc is not None and manager.proc.poll() is None:
                manager.proc.kill()
                manager.proc.wait(10)
