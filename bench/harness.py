"""What the whole-system benchmarks share: a moto S3 server, a manager subprocess, agent homes,
process memory from /proc, percentiles, and the shared datasets' records.

Everything here runs the real programs: ``trailwarden manager run`` and ``trailwarden agent
run`` as subprocesses (so their memory is theirs alone and measurable from /proc), moto's
server in its own process as a real HTTP endpoint. Used by bench/memory.py and bench/latency.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.datasets import dataset_files
from trailwarden.common.logfile import ParsedRecord, read_file
from trailwarden.common.model import SourceMeta

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "trailwarden.common.cli"]
AWS_PROFILE = "bench"
AWS_KEY = "AKIABENCHBENCHBENCH0"
AWS_SECRET = "bench-secret-not-real"  # noqa: S105 - moto accepts any key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# ---- S3 ----------------------------------------------------------------------------------------


@dataclass
class Moto:
    """moto's server in its own process on a free loopback port (S3 as a real HTTP endpoint)."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        stop_process(self.process, 10)


def start_moto() -> Moto:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310
                return Moto(process, url)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)


def use_aws_profile(directory: Path, endpoint: str) -> None:
    """Write a profile named ``bench`` (moto's endpoint, fake keys) and point this process's
    environment, inherited by the agent subprocesses, at it and at nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config").write_text(
        f"[profile {AWS_PROFILE}]\nregion = us-east-1\nendpoint_url = {endpoint}\n"
    )
    (directory / "credentials").write_text(
        f"[{AWS_PROFILE}]\naws_access_key_id = {AWS_KEY}\naws_secret_access_key = {AWS_SECRET}\n"
    )
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = str(directory / "config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(directory / "credentials")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def s3_client(endpoint: str, pool: int = 16) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=AWS_KEY,
        aws_secret_access_key=AWS_SECRET,
        config=Config(max_pool_connections=pool),
    )


# ---- manager and agents ----------------------------------------------------------------------


@dataclass
class Manager:
    """An initialised manager home on free loopback ports, run as ``trailwarden manager run``."""

    home: Path
    link_port: int
    enroll_port: int
    ca_fingerprint: str
    process: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def db_path(self) -> Path:
        return self.home / "manager.db"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self._log = (self.home / "manager.log").open("ab")
        self.process = subprocess.Popen(
            [*CLI, "manager", "run", "--home", str(self.home)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.link_port)
        wait_for_port(self.enroll_port)

    def stop(self) -> None:
        stop_process(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def token(self, uses: int = 1, group: str = "") -> str:
        from trailwarden.manager.agents.registry import Registry
        from trailwarden.manager.store.sqlite.database import Database

        database = Database(self.db_path)
        try:
            return Registry(database).create_token(3600, uses, group, "bench").token
        finally:
            database.close()


def init_manager(path: Path, analysis_workers: int = 0, log_level: str = "WARNING") -> Manager:
    """``manager init`` on free loopback ports; ``analysis_workers`` 0 = one per core."""
    from trailwarden.manager.home import init_home

    link_port, enroll_port = free_port(), free_port()
    result = init_home(
        path,
        ["localhost"],
        listen_host="127.0.0.1",
        link_port=link_port,
        enroll_port=enroll_port,
        advertise_host="127.0.0.1",
    )
    config = path / "manager.toml"
    config.write_text(
        config.read_text()
        .replace("analysis_workers = 0", f"analysis_workers = {analysis_workers}")
        .replace('log_level = "INFO"', f'log_level = "{log_level}"', 1)
    )
    return Manager(path, link_port, enroll_port, result.ca_fingerprint)


def enroll_agent(manager: Manager, home: Path, name: str, sources_toml: str = "") -> Path:
    """Enroll an agent home through the manager's enrollment service; append ``[[sources]]``."""
    from trailwarden.agent.enroll import enroll

    enroll(home, f"127.0.0.1:{manager.enroll_port}", manager.token(), manager.ca_fingerprint, name)
    config = home / "agent.toml"
    text = config.read_text().replace('log_level = "INFO"', 'log_level = "WARNING"', 1)
    config.write_text(text + sources_toml)
    return home


def start_agent(home: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``trailwarden agent run --home HOME [extra]``, output into HOME/agent.log."""
    with (home / "agent.log").open("ab") as log:
        return subprocess.Popen(
            [*CLI, "agent", "run", "--home", str(home), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def count_rows(db_path: Path, sql: str, *params: object) -> int:
    """One integer from the manager's database, read as any admin tool would (WAL readers do
    not block the manager's writer)."""
    import sqlite3

    if not db_path.exists():  # not created yet by a starting process
        return 0
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute(sql, params).fetchone()[0] or 0)
    except sqlite3.OperationalError:  # table not created yet by a starting process
        return 0
    finally:
        db.close()


# ---- memory ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process in MiB: now (VmRSS) and its peak so far (VmHWM)."""

    rss: float
    hwm: float


def memory(pid: int) -> Memory:
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # exited
        return Memory(0.0, 0.0)
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in values:
            values[name] = int(rest.split()[0]) / 1024
    return Memory(values["VmRSS"], values["VmHWM"])


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (e.g. the manager's analysis worker processes)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                found = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            out.extend(found)
            todo.extend(found)
    return out


def tree_rss(pid: int) -> float:
    """VmRSS of ``pid`` plus every descendant, MiB (shared pages counted in each)."""
    return sum(memory(p).rss for p in [pid, *children(pid)])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, seconds (0 once it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Samples a process's VmRSS (and its tree's) every ``period`` seconds in a thread."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        self.pid = pid
        self.period = period
        self.samples: list[float] = []
        self.tree_peak = 0.0
        self.hwm = 0.0
        """The kernel's own peak (VmHWM) at the last sample, MiB."""
        self.tree_cpu = 0.0
        """CPU seconds of the process and its descendants at the last sample."""
        self.cpu = 0.0
        """CPU seconds of the process alone at the last sample."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = memory(self.pid)
            if now.rss:
                self.samples.append(now.rss)
                self.hwm = max(self.hwm, now.hwm)
                pids = [self.pid, *children(self.pid)]
                self.tree_peak = max(self.tree_peak, sum(memory(p).rss for p in pids))
                self.tree_cpu = max(self.tree_cpu, sum(cpu_seconds(p) for p in pids))
                self.cpu = max(self.cpu, cpu_seconds(self.pid))
            self._stop.wait(self.period)

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


# ---- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100): a value that was actually observed."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(min(rank, len(ordered))) - 1]


def machine_load() -> str:
    """``load average 1/5/15 min`` and the core count, for the record of a noisy machine."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


# ---- the shared datasets ----------------------------------------------------------------------

DATASET_SOURCE = SourceMeta(
    "bench",
    "bench",
    "AWSLogs/123456789012/CloudTrail/us-east-1/x.json.gz",
    "123456789012",
    "us-east-1",
)
"""Where the analysis benchmarks say dataset records came from."""


def dataset_records() -> list[ParsedRecord]:
    """Every record of the datasets in tests/files/datasets (``.record`` parsed, ``.raw`` its
    exact bytes), in file order."""
    return [r for path in dataset_files() for r in read_file(str(path)).records]
