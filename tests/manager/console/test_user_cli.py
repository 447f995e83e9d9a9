"""`trailwarden admin user …` end to end: the CLI as a subprocess, over the Admin API, against a
real manager, and what each command does to console logins."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

from tests.fixtures.console import Console

Cli = Callable[..., subprocess.CompletedProcess[str]]
PASSWORD = "correct horse battery staple"


def admin(trailwarden: Cli, console: Console, *args: str, stdin: str | None = None) -> Any:
    return trailwarden(
        "admin",
        "user",
        *args,
        "--credentials",
        str(console.running.home.credentials),
        input_text=stdin,
    )


def test_add_prints_a_password_that_logs_in_and_list_shows_the_user(
    console: Console, trailwarden: Cli
) -> None:
    added = admin(trailwarden, console, "add", "alice", "--role", "admin")
    assert added.returncode == 0, added.stderr
    assert "added console user alice (role admin)" in added.stdout
    password = re.search(r"^password: (\S+)$", added.stdout, re.MULTILINE)
    assert password and len(password.group(1)) >= 20
    assert password.group(1) not in added.stderr
    client = console.client()
    assert client.login("alice", password.group(1)).status == 303
    listed = admin(trailwarden, console, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (user,) = json.loads(listed.stdout)
    assert (user["name"], user["role"], user["created_by"]) == ("alice", "admin", "admin:admin")
    assert user["active_sessions"] == 1 and int(user["last_login_unix_ms"]) > 0
    table = admin(trailwarden, console, "list")
    assert re.search(r"^alice\s+admin\s+", table.stdout, re.MULTILINE), table.stdout
    assert [(e.actor, e.target) for e in console.audit("user.add")] == [("admin:admin", "alice")]
    # The stored hash is argon2id, and the password is nowhere in the database.
    database = (console.running.home.path / "manager.db").read_bytes()
    assert b"$argon2id$" in database and password.group(1).encode() not in database


def test_password_stdin_and_the_policy(console: Console, trailwarden: Cli) -> None:
    short = admin(
        trailwarden, console, "add", "bob", "--role", "viewer", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 2
    assert "at least 12 characters" in short.stderr
    named = admin(
        trailwarden,
        console,
        "add",
        "bob",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="bob-is-my-password\n",
    )
    assert named.returncode != 0 and "must not contain the user name" in named.stderr
    bad_name = admin(trailwarden, console, "add", "Bob Smith", "--role", "viewer")
    assert bad_name.returncode != 0 and "lower-case letters" in bad_name.stderr
    good = admin(
        trailwarden, console, "add", "bob", "--role", "viewer", "--password-stdin", stdin=PASSWORD
    )
    assert good.returncode == 0, good.stderr
    assert "password:" not in good.stdout  # chosen by the admin, not printed
    again = admin(trailwarden, console, "add", "bob", "--role", "admin")
    assert again.returncode != 0 and "already exists" in again.stderr
    assert console.client().login("bob", PASSWORD).status == 303


def test_passwd_and_remove_end_the_users_sessions(console: Console, trailwarden: Cli) -> None:
    console.add_user("carol", "viewer", PASSWORD)
    first, second = console.client(), console.client()
    first.login("carol", PASSWORD)
    second.login("carol", PASSWORD)
    changed = admin(
        trailwarden, console, "passwd", "carol", "--password-stdin", stdin="a new long passphrase\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert "2 session(s) ended" in changed.stdout
    assert first.request("GET", "/").status == 303
    assert second.request("GET", "/").status == 303
    assert console.client().login("carol", PASSWORD).status == 401
    again = console.client()
    assert again.login("carol", "a new long passphrase").status == 303
    generated = admin(trailwarden, console, "passwd", "carol")
    assert re.search(r"^password: \S{20,}$", generated.stdout, re.MULTILINE), generated.stdout
    assert again.request("GET", "/").status == 303
    third = console.client()
    new_password = generated.stdout.split("password: ", 1)[1].split()[0]
    assert third.login("carol", new_password).status == 303
    removed = admin(trailwarden, console, "remove", "carol")
    assert removed.returncode == 0, removed.stderr
    assert "removed console user carol; 1 session(s) ended" in removed.stdout
    assert third.request("GET", "/").status == 303
    assert console.client().login("carol", new_password).status == 401
    missing = admin(trailwarden, console, "remove", "carol")
    assert missing.returncode != 0 and "no console user 'carol'" in missing.stderr
    actions = [e.action for e in console.running.server.registry.audit_entries(100)]
    assert actions.count("user.passwd") == 2 and actions.count("user.remove") == 1
