"""The demo's child processes: real ``trailwarden`` commands, started, watched and stopped.

Each long-running child gets its own session (so a Ctrl-C at the terminal reaches only the demo,
which then stops them in order) and a log file; one-shot commands are run to completion.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from trailwarden.common.errors import TrailWardenError

STOP_TIMEOUT_SECONDS = 20.0
"""How long a child may take to stop on SIGTERM before it is killed."""
_ENTRY = "import sys; from trailwarden.common.cli import main; sys.exit(main())"


class DemoStepError(TrailWardenError):
    """A step of the demo failed; the message says which and why."""


def trailwarden_command(*args: str) -> list[str]:
    """``trailwarden ARGS`` with this very interpreter (works in any venv or the .deb)."""
    return [sys.executable, "-c", _ENTRY, *args]


def free_port() -> int:
    """A port free on loopback right now (the manager binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_command(
    args: Sequence[str], env: Mapping[str, str], what: str, timeout: float = 60.0
) -> str:
    """Run ``trailwarden ARGS`` to completion; its stdout, or DemoStepError with its stderr."""
    try:
        result = subprocess.run(
            trailwarden_command(*args),
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoStepError(f"{what}: no answer within {timeout:.0f}s") from exc
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise DemoStepError(f"{what} failed (exit {result.returncode}): {detail}")
    return result.stdout


def run_json(args: Sequence[str], env: Mapping[str, str], what: str) -> Any:
    """Run a ``--json`` command and parse its output."""
    output = run_command(args, env, what)
    try:
        return json.loads(output)
    except json.JSONDecodeError as exc:
        raise DemoStepError(f"{what}: output is not JSON: {output[:300]!r}") from exc


class Child:
    """One long-running ``trailwarden`` command."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        capture_stdout: bool = False,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            trailwarden_command(*args),
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else self._log,
            stderr=self._log,
            text=capture_stdout or None,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """DemoStepError naming the child, with its last log lines, if it has exited."""
        code = self.process.poll()
        if code is not None:
            raise DemoStepError(
                f"{self.name} exited with code {code}; last lines of {self.log_path}:\n"
                f"{self.log_tail()}"
            )

    def wait_for_port(self, port: int, timeout: float) -> None:
        """Until something accepts connections on 127.0.0.1:port (while the child lives)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise DemoStepError(f"{self.name} did not open port {port} within {timeout:.0f}s")

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM (the children drain and exit), then SIGKILL after ``timeout``."""
        if self.running():
            # The command itself first, so that it drains and stops its own helpers in order.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_session()
                self.process.wait(5)
        self._kill_session()  # anything of its session still left (e.g. orphaned workers)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def _kill_session(self) -> None:
        # The child leads its own session and process group (start_new_session).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
