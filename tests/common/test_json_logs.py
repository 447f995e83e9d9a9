"""log_format = "json": one object a line with the stage and identifiers, secrets still masked;
text lines under journald without their timestamp. Real processes where it matters."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.system import ManagerProcess
from trailwarden.common.logs import JsonFormatter, RedactSecrets

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/x_20261120T1000Z_a.json.gz"


def _json_lines(emit: list[tuple[int, str, tuple[object, ...]]]) -> list[dict[str, object]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("trailwarden.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for level, message, args in emit:
            logger.log(level, message, *args)
        try:
            raise RuntimeError(f"token=tw1_{'x' * 30}")
        except RuntimeError:
            logger.exception("stage=send failed agent=%s", "a1")
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_carries_stage_identifiers_and_masks_secrets() -> None:
    link, fetch, masked, failed = _json_lines(
        [
            (logging.INFO, "stage=link connected agent=%s name=%s seq=%d", ("3f9c", "web-1", 42)),
            (logging.WARNING, "fetch: source %s: s3://%s/%s arrived late", ("org", "bkt", KEY)),
            (logging.INFO, "stage=config aws_secret_access_key=%s agent=%s", (SECRET, "a1")),
        ]
    )
    assert link["level"] == "INFO" and link["logger"] == "trailwarden.test.json"
    assert str(link["time"]).endswith("+00:00") and "T" in str(link["time"])
    assert link["message"] == "stage=link connected agent=3f9c name=web-1 seq=42"
    assert (link["stage"], link["agent_id"], link["name"], link["batch"]) == (
        "link",
        "3f9c",
        "web-1",
        "42",
    )
    assert (fetch["stage"], fetch["source"], fetch["bucket"], fetch["key"]) == (
        "fetch",
        "org",
        "bkt",
        KEY,
    )
    assert fetch["level"] == "WARNING"
    text = json.dumps(masked)
    assert SECRET not in text and masked["aws_secret_access_key"] == "[REDACTED]"
    assert masked["agent_id"] == "a1"
    assert "RuntimeError" in str(failed["exception"]) and "tw1_" not in json.dumps(failed)


def test_the_manager_logs_json_lines_when_configured(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    config = manager_process.home.path / "manager.toml"
    text = config.read_text()
    assert 'log_format = "text"' in text  # manager init writes the key, default text
    config.write_text(text.replace('log_format = "text"', 'log_format = "json"'))
    manager_process.start()
    deadline = time.monotonic() + 30
    while '"stage": "start"' not in manager_process.log_path.read_text():
        assert time.monotonic() < deadline, manager_process.log_path.read_text()
        time.sleep(0.05)
    time.sleep(0.5)  # its signal handlers are installed right after the start line
    assert manager_process.terminate() == 0
    lines = [line for line in manager_process.log_path.read_text().splitlines() if line]
    assert len(lines) >= 3
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(p) for p in parsed)
    stages = {p.get("stage") for p in parsed}
    assert {"start", "stop"} <= stages, stages


def test_a_bad_log_format_stops_the_manager_naming_the_key(
    manager_process: ManagerProcess,
) -> None:
    config = manager_process.home.path / "manager.toml"
    config.write_text(config.read_text().replace('log_format = "text"', 'log_format = "xml"'))
    result = subprocess.run(
        [sys.executable, "-m", "trailwarden.common.cli", "manager", "run", "--home",
         str(manager_process.home.path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "manager.log_format: expected one of text, json" in result.stderr


@pytest.mark.parametrize("journal", [True, False])
def test_text_lines_under_journald_drop_the_timestamp(tmp_path: Path, journal: bool) -> None:
    """systemd sets JOURNAL_STREAM to the device:inode of the stream it gave us as stderr."""
    out = tmp_path / "stderr"
    out.touch()
    status = os.stat(out)
    env = {**os.environ, "JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}" if journal else ""}
    program = (
        "import logging; from trailwarden.common.logs import setup_logging; setup_logging(); "
        "logging.getLogger('trailwarden.x').warning('stage=fetch slow')"
    )
    with out.open("w") as stderr:
        subprocess.run([sys.executable, "-c", program], stderr=stderr, env=env, check=True)
    line = out.read_text().strip()
    if journal:
        assert line == "<4>WARNING trailwarden.x: stage=fetch slow"
    else:
        assert line.endswith(" WARNING trailwarden.x: stage=fetch slow")
        assert line[:4].isdigit() and line[10] == "T"  # 2026-12-04T19:30:00 ...
