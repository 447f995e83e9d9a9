"""The alerts JSON lines file: Wazuh's shape, line by line, rotated daily and by size."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.manager.store.factory import make_alert
from trailwarden.common.errors import ConfigError, OutputError
from trailwarden.manager.outputs.alerts_file import (
    AlertsFile,
    AlertsFileConfig,
    rotated_path,
)

DAY1 = datetime(2026, 11, 25, 23, 50, tzinfo=UTC)


class Clock:
    """Time the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def read_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_each_line_is_one_alert_in_wazuh_shape(tmp_path: Path) -> None:
    out = AlertsFile(tmp_path / "alerts")
    alerts = [make_alert(mitre_ids=("T1078",)), make_alert(rule_id="80203", level=12)]
    assert out.write(alerts) == 2
    out.close()
    lines = read_lines(tmp_path / "alerts" / "alerts.json")
    assert lines == [a.to_wazuh() for a in alerts]
    first = lines[0]
    assert set(first) >= {
        "timestamp",
        "rule",
        "agent",
        "manager",
        "id",
        "decoder",
        "location",
        "data",
    }
    assert set(first["rule"]) >= {"id", "level", "description", "groups", "mitre", "firedtimes"}
    assert first["rule"]["mitre"] == {
        "id": ["T1078"],
        "technique": ["Valid Accounts"],
        "tactic": ["Defense Evasion", "Persistence", "Privilege Escalation", "Initial Access"],
    }
    assert first["agent"] == {"id": "agent-1", "name": "host-a"}
    assert first["data"]["integration"] == "aws"
    assert (tmp_path / "alerts" / "alerts.json").stat().st_mode & 0o777 == 0o640


def test_appends_across_restarts(tmp_path: Path) -> None:
    first, second = make_alert(), make_alert()
    out = AlertsFile(tmp_path)
    out.write([first])
    out.close()
    again = AlertsFile(tmp_path)
    again.write([second])
    again.close()
    assert [line["id"] for line in read_lines(again.path)] == [first.id, second.id]


def test_min_level_and_disabled(tmp_path: Path) -> None:
    out = AlertsFile(tmp_path / "a", AlertsFileConfig(min_level=7))
    assert out.write([make_alert(level=3), make_alert(level=7), make_alert(level=12)]) == 2
    out.close()
    assert [line["rule"]["level"] for line in read_lines(out.path)] == [7, 12]
    off = AlertsFile(tmp_path / "b", AlertsFileConfig(enabled=False))
    assert off.write([make_alert()]) == 0
    assert not off.path.exists()


def test_daily_rotation_moves_the_day_into_the_dated_folder(tmp_path: Path) -> None:
    clock = Clock(DAY1)
    out = AlertsFile(tmp_path, clock=clock)
    day1 = [make_alert(), make_alert()]
    out.write(day1)
    clock.now = DAY1 + timedelta(minutes=20)  # past midnight UTC
    day2 = [make_alert()]
    out.write(day2)
    out.close()
    rotated = tmp_path / "2026" / "Nov" / "alerts-25.json"
    assert rotated == rotated_path(tmp_path, DAY1.date())
    assert [line["id"] for line in read_lines(rotated)] == [a.id for a in day1]
    assert [line["id"] for line in read_lines(out.path)] == [a.id for a in day2]


def test_size_rotation_never_splits_a_line_and_loses_nothing(tmp_path: Path) -> None:
    clock = Clock(DAY1)
    one_line = len(json.dumps(make_alert().to_wazuh(), separators=(",", ":"))) + 1
    out = AlertsFile(tmp_path, AlertsFileConfig(max_bytes=int(one_line * 3.5)), clock=clock)
    alerts = [make_alert() for _ in range(10)]
    for alert in alerts:
        out.write([alert])
    clock.now = DAY1 + timedelta(hours=1)  # next day: the rest becomes alerts-25.json
    tomorrow = make_alert()
    out.write([tomorrow])
    out.close()
    month = tmp_path / "2026" / "Nov"
    # 10 lines, at most 3 per file: three size rotations, then the day's last file.
    parts = [month / f"alerts-25-{n:03d}.json" for n in (1, 2, 3)] + [month / "alerts-25.json"]
    assert sorted(p.name for p in month.iterdir()) == sorted(p.name for p in parts)
    ids = [line["id"] for part in parts for line in read_lines(part)]
    assert ids == [a.id for a in alerts]
    assert all(part.stat().st_size <= one_line * 3.5 for part in parts)
    assert [line["id"] for line in read_lines(out.path)] == [tomorrow.id]


def test_a_file_left_from_an_earlier_day_is_rotated_on_restart(tmp_path: Path) -> None:
    old = AlertsFile(tmp_path)
    stale = make_alert()
    old.write([stale])
    old.close()
    earlier = (DAY1 - timedelta(days=3)).timestamp()
    os.utime(old.path, (earlier, earlier))
    new = AlertsFile(tmp_path, clock=Clock(DAY1))
    fresh = make_alert()
    new.write([fresh])
    new.close()
    assert [line["id"] for line in read_lines(tmp_path / "2026" / "Nov" / "alerts-22.json")] == [
        stale.id
    ]
    assert [line["id"] for line in read_lines(new.path)] == [fresh.id]


def test_write_failure_is_an_output_error_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "alerts"
    blocker.write_text("not a directory")
    out = AlertsFile(blocker)
    with pytest.raises(OutputError, match=r"alerts file .*alerts\.json: write failed"):
        out.write([make_alert()])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_size": 5}, r"unknown key\(s\) 'max_size'"),
        ({"enabled": "yes"}, "enabled: must be true or false"),
        ({"max_bytes": 0}, "max_bytes: must be an integer >= 1"),
        ({"min_level": "3"}, "min_level: must be an integer >= 0"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AlertsFileConfig.from_mapping(data, "manager.toml [outputs.alerts_file]")


def test_config_from_mapping() -> None:
    config = AlertsFileConfig.from_mapping({"max_bytes": 1024, "min_level": 3})
    assert config == AlertsFileConfig(enabled=True, max_bytes=1024, min_level=3)
