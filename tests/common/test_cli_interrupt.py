"""Commands stop on SIGINT even when started with SIGINT ignored, as a non-interactive shell
starts its background jobs (``trailwarden demo &``, CI scripts): the ignore is inherited."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

TRAILWARDEN = Path(sys.executable).parent / "trailwarden"
IGNORE_SIGINT_THEN_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def started_with_sigint_ignored(*command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", IGNORE_SIGINT_THEN_EXEC, *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sigint_ignored(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    raise AssertionError(f"no SigIgn line for process {pid}")


def test_sigint_stops_a_command_that_inherited_it_ignored() -> None:
    # logtest waits for records on stdin, which stays open: only a signal ends it.
    process = started_with_sigint_ignored(str(TRAILWARDEN), "logtest")
    try:
        # Wait until the kernel says SIGINT is ignored (the wrapper ran), then until it is not
        # (the command took it back): a SIGINT sent in between would be ignored.
        deadline = time.monotonic() + 60
        for ignored in (False, True):
            while sigint_ignored(process.pid) == ignored:
                assert time.monotonic() < deadline, f"SIGINT ignored stayed {ignored}"
                assert process.poll() is None, process.communicate()[0]
                time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
