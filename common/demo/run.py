"""The demo, step by step: emulator, trail, manager, enrollment, agent, alerts, summary.

Everything TrailWarden-side runs as the real commands (``manager init/run``, ``admin token
create``, ``agent enroll/run``, ``admin alerts --follow``, ``admin stats``) in child processes;
only the S3 emulator and the trail generator run inside the demo process.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from trailwarden.common.demo import display
from trailwarden.common.demo.children import (
    Child,
    DemoStepError,
    free_port,
    run_command,
    run_json,
)
from trailwarden.common.demo.emulator import PROFILE, AwsFiles, S3Emulator
from trailwarden.common.generator import (
    SCENARIOS,
    expected_rules,
    generate_records,
    write_objects,
)

log = logging.getLogger(__name__)

ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("us-east-1", "eu-west-1")
ORGANIZATION_ID = "o-demo0trail1"
BUCKET = "trailwarden-demo-org-trail"
AGENT_NAME = "demo-agent"
CONSOLE_USER = "demo"
START_ATTEMPTS = 3
"""Manager start attempts (a port picked as free may be taken before the manager binds it)."""
POLL_SECONDS = 1.0


class DemoStopped(Exception):
    """SIGTERM (or Ctrl-C) asked the demo to stop."""


@dataclass
class DemoOptions:
    events: int
    seed: int
    keep: bool
    timeout: float
    home: Path | None = None


@dataclass
class DemoState:
    home: Path
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    credentials: Path | None = None
    records: int = 0
    shown: int = 0
    console: ConsoleLogin | None = None


@dataclass(frozen=True)
class ConsoleLogin:
    """The web console of the demo's manager and the login made for this run."""

    url: str
    user: str
    password: str
    ca_file: Path


def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when every record was analysed and every expected rule fired."""
    own_home = options.home is None
    home = options.home or Path(tempfile.mkdtemp(prefix="trailwarden-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    emulator = S3Emulator()
    state = DemoState(home=home, env={})
    succeeded = False
    with _stop_on_sigterm():
        try:
            code = _run(options, state, emulator, out)
            succeeded = code == 0
            return code
        except (KeyboardInterrupt, DemoStopped):
            print("\ndemo: stopping (interrupted)", file=out, flush=True)
            return 130
        except DemoStepError as exc:
            print(f"\ndemo: FAILED: {exc}", file=out, flush=True)
            return 1
        finally:
            with _signals_ignored():  # a second Ctrl-C must not leave children behind
                for child in reversed(state.children):
                    child.stop()
                emulator.stop()
            if own_home and succeeded:
                shutil.rmtree(home, ignore_errors=True)
            elif not succeeded:
                print(f"demo: logs and state kept in {home}", file=out, flush=True)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside (main thread only; elsewhere a no-op)."""
    saved: list[tuple[signal.Signals, Any]] = []
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            saved.append((signum, signal.signal(signum, signal.SIG_IGN)))
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, previous in saved:
            signal.signal(signum, previous)


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into DemoStopped so that the cleanup above runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise DemoStopped()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(out: TextIO, text: str) -> None:
    print(f"demo: {text}", file=out, flush=True)


def _run(options: DemoOptions, state: DemoState, emulator: S3Emulator, out: TextIO) -> int:
    home = state.home
    _say(out, f"working in {home}")
    url = emulator.start()
    aws = emulator.write_profile(home / "aws")
    state.env = _child_environment(aws)
    _say(out, f"S3 emulator (moto) listening on {url}; AWS profile '{PROFILE}' points at it")

    records = generate_records(ACCOUNTS, REGIONS, options.events, "all", options.seed)
    state.records = len(records)
    # The in-process writer reads the same profile files as the agent will.
    os.environ.update(aws.environment())
    written = write_objects(
        records,
        f"s3://{BUCKET}",
        organization_id=ORGANIZATION_ID,
        seed=options.seed,
        digest=True,
        endpoint_url=url,
        profile=PROFILE,
    )
    first_day = str(records[0]["eventTime"])[:10]
    _say(
        out,
        f"organization trail written: {len(records)} records in {len(written)} objects "
        f"(digests included) to s3://{BUCKET}, accounts {', '.join(ACCOUNTS)}, "
        f"regions {', '.join(REGIONS)}, {len(SCENARIOS)} scenarios",
    )

    manager_home, enroll_port, console_port = _start_manager(state, out)
    credentials = manager_home / "admin.credentials"
    state.credentials = credentials
    state.console = _console_login(state, manager_home, console_port)
    _say_console(out, state.console)
    token = run_json(
        ["admin", "token", "create", "--json", "--credentials", str(credentials), "--ttl", "10m"],
        state.env,
        "admin token create",
    )
    agent_home = home / "agent"
    run_command(
        [
            "agent",
            "enroll",
            "--home",
            str(agent_home),
            "--manager",
            f"127.0.0.1:{enroll_port}",
            "--token",
            str(token["token"]),
            "--ca-sha256",
            str(token["ca_sha256"]),
            "--name",
            AGENT_NAME,
        ],
        state.env,
        "agent enroll",
    )
    _say(out, f"agent '{AGENT_NAME}' enrolled with a one-time token (CA pinned by SHA-256)")
    _add_source(agent_home / "agent.toml", url, first_day)

    alerts: queue.Queue[dict[str, Any]] = queue.Queue()
    follower = Child(
        "alerts follower",
        # --since makes the stream replay what was raised before it subscribed: no race with
        # the agent's first batches, whatever the follower's start-up time.
        [
            "admin",
            "alerts",
            "--follow",
            "--json",
            "--since",
            "1d",
            "--credentials",
            str(credentials),
        ],
        state.env,
        home / "logs" / "follow.log",
        capture_stdout=True,
    )
    state.children.append(follower)
    threading.Thread(target=_read_alerts, args=(follower, alerts), daemon=True).start()
    agent = Child(
        "agent",
        ["agent", "run", "--home", str(agent_home)],
        state.env,
        home / "logs" / "agent.log",
    )
    state.children.append(agent)
    _say(out, "agent started; alerts as they arrive:")
    display.header(out)

    stats = _follow_until_done(options, state, alerts, out)
    pipeline = stats.get("pipeline", {})
    fired = {str(k): int(v) for k, v in pipeline.get("rules_fired", {}).items()}
    labels = {str(b.get("key")): str(b.get("label", "")) for b in stats.get("buckets", [])}
    wanted = expected_rules(SCENARIOS)
    missing = display.summary(out, fired, labels, wanted)
    analysed, bad = int(pipeline.get("analysed", 0)), int(pipeline.get("bad_records", 0))
    print("", file=out)
    _say(
        out,
        f"{analysed} of {state.records} records analysed, {bad} bad, {sum(fired.values())} alerts",
    )
    if missing or analysed < state.records or bad:
        reasons = []
        if analysed < state.records:
            reasons.append(f"only {analysed} of {state.records} records analysed")
        if bad:
            reasons.append(f"{bad} records could not be decoded")
        if missing:
            reasons.append(f"expected rules that never fired: {', '.join(missing)}")
        raise DemoStepError("; ".join(reasons))
    _say(
        out,
        f"OK: every record analysed and every expected rule fired ({', '.join(sorted(wanted))})",
    )
    if options.keep:
        _keep_running(state, out)
    return 0


def _child_environment(aws: AwsFiles) -> dict[str, str]:
    """The demo's children see the demo profile only: never a real AWS account's keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRAILWARDEN_"))}
    env.update(aws.environment())
    return env


def _start_manager(state: DemoState, out: TextIO) -> tuple[Path, int, int]:
    """``manager init`` + ``manager run`` on free loopback ports; returns (home, enrollment
    port, console port)."""
    for attempt in range(1, START_ATTEMPTS + 1):
        manager_home = state.home / f"manager-{attempt}" if attempt > 1 else state.home / "manager"
        link_port, enroll_port, console_port = free_port(), free_port(), free_port()
        run_command(
            [
                "manager",
                "init",
                "--home",
                str(manager_home),
                "--server-name",
                "localhost",
                "--listen-host",
                "127.0.0.1",
                "--link-port",
                str(link_port),
                "--enroll-port",
                str(enroll_port),
                "--console-port",
                str(console_port),
            ],
            state.env,
            "manager init",
        )
        manager = Child(
            "manager",
            ["manager", "run", "--home", str(manager_home)],
            state.env,
            state.home / "logs" / f"manager-{attempt}.log",
        )
        state.children.append(manager)
        try:
            manager.wait_for_port(link_port, timeout=60)
            manager.wait_for_port(enroll_port, timeout=30)
            manager.wait_for_port(console_port, timeout=30)
        except DemoStepError:
            if attempt == START_ATTEMPTS or manager.running():
                raise
            state.children.remove(manager)
            manager.stop()
            continue
        _say(
            out,
            f"manager running (SQLite in {manager_home}), agent link 127.0.0.1:{link_port}, "
            f"enrollment 127.0.0.1:{enroll_port}",
        )
        return manager_home, enroll_port, console_port
    raise DemoStepError("manager could not start")  # pragma: no cover - loop raises first


def _console_login(state: DemoState, manager_home: Path, port: int) -> ConsoleLogin:
    """A console user for this run (admin role, generated password), through `admin user add`."""
    assert state.credentials is not None
    added = run_json(
        [
            "admin",
            "user",
            "add",
            CONSOLE_USER,
            "--role",
            "admin",
            "--json",
            "--credentials",
            str(state.credentials),
        ],
        state.env,
        "admin user add",
    )
    return ConsoleLogin(
        url=f"https://127.0.0.1:{port}/",
        user=CONSOLE_USER,
        password=str(added["generated_password"]),
        ca_file=manager_home / "pki" / "ca.pem",
    )


def _say_console(out: TextIO, login: ConsoleLogin | None) -> None:
    if login is None:
        return
    _say(out, f"web console: {login.url}")
    _say(out, f"  log in as user {login.user!r} with password {login.password!r} (this run only)")
    _say(
        out,
        f"  the certificate is from the demo manager's own CA, {login.ca_file}: trust it "
        f"or accept the browser's warning for this local demo",
    )


def _add_source(agent_toml: Path, url: str, first_day: str) -> None:
    """The organization trail source, through the emulator profile."""
    with agent_toml.open("a") as handle:
        handle.write(
            "\n# Added by `trailwarden demo`: the generated organization trail in the emulator.\n"
            "[[sources]]\n"
            'type = "cloudtrail"\n'
            'name = "demo-org-trail"\n'
            f'bucket = "{BUCKET}"\n'
            f'aws_profile = "{PROFILE}"\n'
            f'aws_organization_id = "{ORGANIZATION_ID}"\n'
            f'only_logs_after = "{first_day}"\n'
            f'service_endpoint = "{url}"\n'
            'interval = "15s"\n'
        )


def _read_alerts(follower: Child, alerts: queue.Queue[dict[str, Any]]) -> None:
    stream = follower.process.stdout
    if stream is None:
        return
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            alerts.put(json.loads(line))
        except json.JSONDecodeError:
            log.debug("demo: follower printed a non-JSON line: %s", line[:200])


def _follow_until_done(
    options: DemoOptions, state: DemoState, alerts: queue.Queue[dict[str, Any]], out: TextIO
) -> dict[str, Any]:
    """Print alerts until every record is analysed and every expected rule fired (or timeout)."""
    assert state.credentials is not None
    wanted = expected_rules(SCENARIOS)
    deadline = time.monotonic() + options.timeout
    next_poll = 0.0
    stats: dict[str, Any] = {}
    while True:
        _drain(alerts, state, out)
        for child in state.children:
            if child.name != "alerts follower":
                child.check_alive()
        now = time.monotonic()
        if now >= next_poll:
            next_poll = now + POLL_SECONDS
            stats = run_json(
                ["admin", "stats", "--json", "--credentials", str(state.credentials)],
                state.env,
                "admin stats",
            )
            pipeline = stats.get("pipeline", {})
            fired = set(pipeline.get("rules_fired", {}))
            if int(pipeline.get("analysed", 0)) >= state.records and wanted <= fired:
                time.sleep(POLL_SECONDS)  # the follower's last lines
                _drain(alerts, state, out)
                return stats
        if now >= deadline:
            _drain(alerts, state, out)
            return stats
        time.sleep(0.1)


def _drain(alerts: queue.Queue[dict[str, Any]], state: DemoState, out: TextIO) -> None:
    width = display.terminal_width()
    while True:
        try:
            alert = alerts.get_nowait()
        except queue.Empty:
            out.flush()
            return
        state.shown += 1
        print(display.alert_line(alert, width), file=out)


def _keep_running(state: DemoState, out: TextIO) -> None:
    """Print how to query the running demo, then wait for Ctrl-C or SIGTERM."""
    credentials = state.credentials
    print("", file=out)
    _say(out, "still running (--keep). Query it from another terminal:")
    for command in (
        f"export TRAILWARDEN_CREDENTIALS={credentials}",
        f"trailwarden admin alerts --credentials {credentials} --min-level 5",
        f"trailwarden admin alerts --credentials {credentials} --rule 80255 --json",
        f"trailwarden admin stats --credentials {credentials} --by rule",
        f"trailwarden admin agents --credentials {credentials}",
        f"trailwarden admin alerts --credentials {credentials} --follow",
    ):
        print(f"    {command}", file=out)
    aws = " ".join(f"{k}={v}" for k, v in sorted(state.env.items()) if k.startswith("AWS_"))
    _say(out, "add activity to the trail (the agent picks it up within 15 s):")
    print(
        f"    {aws} trailwarden generate --events 50 --seed {int(time.time()) % 100000} "
        f"--out s3://{BUCKET} --organization-id {ORGANIZATION_ID} --profile {PROFILE} "
        f"--duration 5m --scenario console-login-burst",
        file=out,
    )
    _say_console(out, state.console)
    _say(out, "press Ctrl-C (or send SIGTERM) to stop everything")
    out.flush()
    try:
        while True:
            for child in state.children:
                child.check_alive()
            time.sleep(0.5)
    except (KeyboardInterrupt, DemoStopped):
        # The normal end of a --keep run: the check above already passed.
        print("", file=out)
        _say(out, "stopping the agent, the manager and the emulator")
