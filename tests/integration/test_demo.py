"""`trailwarden demo` as a user runs it: a subprocess that must end with exit 0, every documented
rule and every added detection in its output, and no process left behind (also on --keep +
Ctrl-C and on SIGTERM in the middle)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.console import ConsoleClient
from trailwarden.common.generator import DOCUMENTED_RULES, SCENARIOS, expected_rules

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TRAILWARDEN = Path(sys.executable).with_name("trailwarden")
ADDED_DETECTIONS = sorted(expected_rules(SCENARIOS) - set(DOCUMENTED_RULES))


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (the demo's home folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(f"{entry.name}: {command}")
    return found


def kill_leftovers(text: str) -> None:
    """A failed test must not leave the demo's manager and agent running (nor hang CI)."""
    for line in processes_mentioning(text):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    """Whatever a test asserted, nothing it started outlives it."""
    yield
    kill_leftovers(str(tmp_path))


def wait_gone(text: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def demo(home: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(TRAILWARDEN), "demo", "--home", str(home), "--events", "200", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 240.0) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never printed; output:\n{''.join(seen)[-4000:]}")


def test_demo_exits_0_with_every_documented_rule_and_added_detection(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = subprocess.run(
        [str(TRAILWARDEN), "demo", "--home", str(home), "--events", "300", "--seed", "5"],
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    summary = output[output.index("RULE   ALERTS") :]
    for rule in (*DOCUMENTED_RULES, *ADDED_DETECTIONS):
        assert re.search(rf"^{rule}\s+[1-9]\d*\s+yes", summary, re.MULTILINE), (rule, summary)
    # Alerts were shown live, with account and user columns.
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+10\s+80255\s+\d{12}\s+erin", output, re.MULTILINE
    ), output[-3000:]
    assert "300 of 300 records analysed, 0 bad, 300 alerts" in output
    live = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+\s+80\d{3}\s", output, re.MULTILINE)
    assert len(live) == 300  # every alert was shown as it arrived, none missed
    assert "OK: every record analysed and every expected rule fired" in output
    assert not wait_gone(str(home))
    # The agent really read the org trail from the emulator through the profile.
    agent_toml = (home / "agent" / "agent.toml").read_text()
    assert 'aws_profile = "trailwarden-demo"' in agent_toml
    assert 'aws_organization_id = "o-demo0trail1"' in agent_toml


def test_demo_keep_prints_working_admin_commands_and_ctrl_c_stops_everything(
    tmp_path: Path,
) -> None:
    home = tmp_path / "kept"
    process = demo(home, "--keep")
    try:
        output = read_until(process, "press Ctrl-C")
        # The web console is up, at the printed URL, with the printed one-run login.
        console = re.search(r"web console: https://127\.0\.0\.1:(\d+)/", output)
        login = re.search(r"log in as user 'demo' with password '([^']+)'", output)
        assert console and login, output[-3000:]
        client = ConsoleClient(
            int(console.group(1)), home / "manager" / "pki" / "ca.pem", host="127.0.0.1"
        )
        assert client.login("demo", login.group(1)).status == 303
        assert client.request("GET", "/").status == 200
        assert client.request("GET", "/api/me").json() == {"name": "demo", "role": "admin"}
        stats_line = next(line for line in output.splitlines() if "admin stats" in line)
        command = stats_line.split()
        assert command[0] == "trailwarden" and "--credentials" in command
        queried = subprocess.run(
            [str(TRAILWARDEN), *command[1:], "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert queried.returncode == 0, queried.stderr
        assert '"80255"' in queried.stdout
        assert processes_mentioning(str(home)), "children should still be running with --keep"
        # The printed generate command adds activity that the running agent picks up.
        generate = next(line for line in output.splitlines() if "trailwarden generate" in line)
        added = subprocess.run(
            [
                "bash",
                "-c",
                generate.strip().replace("trailwarden generate", f"{TRAILWARDEN} generate", 1),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        assert "wrote 50 records" in added.stdout
        deadline = time.monotonic() + 90
        analysed = 0
        while time.monotonic() < deadline and analysed < 250:
            stats = subprocess.run(
                [str(TRAILWARDEN), *command[1:], "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            analysed = int(re.search(r'"analysed": (\d+)', stats).group(1))  # type: ignore[union-attr]
            time.sleep(1)
        assert analysed == 250
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest[-3000:]
    assert "stopping the agent, the manager and the emulator" in rest
    assert not wait_gone(str(home))


def test_sigterm_while_running_stops_every_child(tmp_path: Path) -> None:
    home = tmp_path / "interrupted"
    process = demo(home)
    try:
        read_until(process, "agent started")
        assert processes_mentioning(str(home / "manager")), processes_mentioning(str(home))
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, rest[-3000:]
    assert "stopping (interrupted)" in rest
    assert not wait_gone(str(home))
