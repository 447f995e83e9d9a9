"""agent.toml: bad values are refused naming the file and key, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from trailwarden.agent.config import parse_agent_config
from trailwarden.common.errors import ConfigError

BASE = {"manager": {"address": "manager.example:4750"}}


def test_unknown_log_level_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent.toml: agent.log_level: expected one of"):
        parse_agent_config({**BASE, "agent": {"log_level": "LOUD"}}, tmp_path, "agent.toml")


def test_log_format_is_text_or_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent.toml: agent.log_format: expected one of text"):
        parse_agent_config({**BASE, "agent": {"log_format": "xml"}}, tmp_path, "agent.toml")
    config = parse_agent_config({**BASE, "agent": {"log_format": "JSON"}}, tmp_path, "agent.toml")
    assert config.log_format == "json"


@pytest.mark.parametrize("value", [0.5, "25h", -1])
def test_progress_log_seconds_is_off_or_1s_to_24h(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match=r"agent.toml: agent.progress_log_seconds: "):
        parse_agent_config(
            {**BASE, "agent": {"progress_log_seconds": value}}, tmp_path, "agent.toml"
        )
    off = parse_agent_config({**BASE, "agent": {"progress_log_seconds": 0}}, tmp_path, "a.toml")
    assert off.progress_log_seconds == 0


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent.toml: spool: unknown key\(s\) 'limt'"):
        parse_agent_config({**BASE, "spool": {"limt": "1GiB"}}, tmp_path, "agent.toml")


def test_defaults(tmp_path: Path) -> None:
    config = parse_agent_config(dict(BASE), tmp_path, "agent.toml")
    assert config.spool_path == tmp_path / "spool.db"
    assert config.spool_limit_bytes == 1024**3
    assert config.log_level == "INFO"
    assert config.log_format == "text"
    assert config.progress_log_seconds == 30
