"""`[console]` in manager.toml: defaults, ranges, both-or-neither certificate, unknown keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trailwarden.common.errors import ConfigError
from trailwarden.manager.config import ConsoleConfig, parse_manager_config


def console(table: dict[str, Any], tmp_path: Path) -> ConsoleConfig:
    return parse_manager_config({"console": table}, tmp_path, "manager.toml").console


def test_defaults(tmp_path: Path) -> None:
    config = console({}, tmp_path)
    assert config == ConsoleConfig()
    assert config.enabled and config.listen == "0.0.0.0:4752"
    assert (config.session_ttl_seconds, config.idle_timeout_seconds) == (12 * 3600, 3600)


def test_durations_are_read_and_kept_in_range(tmp_path: Path) -> None:
    config = console({"session_ttl": "8h", "idle_timeout": "15m"}, tmp_path)
    assert (config.session_ttl_seconds, config.idle_timeout_seconds) == (8 * 3600, 900)
    for table, message in (
        ({"session_ttl": "30s"}, r"console\.session_ttl: must be between 1m and 30d"),
        ({"session_ttl": "31d"}, r"console\.session_ttl: must be between 1m and 30d"),
        ({"session_ttl": 0}, r"console\.session_ttl"),
        ({"session_ttl": "1h", "idle_timeout": "2h"}, r"console\.idle_timeout: .*session_ttl"),
        ({"idle_timeout": "10s"}, r"console\.idle_timeout"),
    ):
        with pytest.raises(ConfigError, match=message):
            console(table, tmp_path)


def test_a_certificate_needs_its_key_and_the_other_way_round(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"manager\.toml: console\.tls_key: give tls_cert"):
        console({"tls_cert": "console.pem"}, tmp_path)
    with pytest.raises(ConfigError, match=r"console\.tls_cert: give tls_cert and tls_key"):
        console({"tls_key": "console.key"}, tmp_path)
    both = console({"tls_cert": "c.pem", "tls_key": "c.key"}, tmp_path)
    assert (both.tls_cert, both.tls_key) == ("c.pem", "c.key")


def test_bad_addresses_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"console\.listen: expected host:port"):
        console({"listen": "4752"}, tmp_path)
    with pytest.raises(ConfigError, match=r"console: unknown key\(s\) 'port'"):
        console({"port": 4752}, tmp_path)
    assert console({"listen": "127.0.0.1:0"}, tmp_path).listen == "127.0.0.1:0"
