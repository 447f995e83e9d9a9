"""Static checks of the systemd units and of the reference configuration files (no build)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from trailwarden.agent.config import parse_agent_config
from trailwarden.manager.config import parse_manager_config
from trailwarden.manager.store.retention import RetentionPolicy

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
UNITS = {
    "trailwarden-manager.service": ("trailwarden-manager", "manager", "trailwarden"),
    "trailwarden-agent.service": ("trailwarden-agent", "agent", "trailwarden-agent"),
}
"""unit -> (user, component, state folder under /var/lib), as `admin token create` prints."""
VENV_BIN = "/opt/trailwarden/venv/bin/trailwarden"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (systemd allows repeated keys, e.g. Environment=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}:{number}: key outside a section"
        assert "=" in line, f"{path}:{number}: not key=value: {line!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_is_hardened_and_runs_its_own_user(unit: str) -> None:
    user, role, state_name = UNITS[unit]
    sections = parse_unit(PACKAGING / "systemd" / unit)
    assert set(sections) == {"Unit", "Service", "Install"}
    service = {key: values[-1] for key, values in sections["Service"].items()}
    state = f"/var/lib/{state_name}"
    assert service["User"] == user and service["Group"] == user
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["ProtectHome"] == "yes"
    assert service["Restart"] == "on-failure"
    assert service["CapabilityBoundingSet"] == ""
    # Writable: exactly the component's own state folder.
    assert sections["Service"]["ReadWritePaths"] == [state]
    assert service["StateDirectory"] == state_name
    assert service["StateDirectoryMode"] == "0700"
    command = service["ExecStart"].split()
    assert command[:3] == [VENV_BIN, role, "run"]
    assert command[3:] == ["--home", state]
    assert sections["Unit"]["ConditionPathExists"] == [f"{state}/{role}.toml"]
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]


def test_units_use_different_users_and_state() -> None:
    users = {parse_unit(PACKAGING / "systemd" / u)["Service"]["User"][0] for u in UNITS}
    assert len(users) == len(UNITS)


def test_agent_unit_reads_aws_profiles_outside_its_writable_home() -> None:
    env = parse_unit(PACKAGING / "systemd" / "trailwarden-agent.service")["Service"]["Environment"]
    assert "AWS_CONFIG_FILE=/etc/trailwarden/aws/config" in env
    assert "AWS_SHARED_CREDENTIALS_FILE=/etc/trailwarden/aws/credentials" in env


def test_reference_manager_toml_is_accepted_by_the_manager(tmp_path: Path) -> None:
    data = tomllib.loads((PACKAGING / "config" / "manager.toml").read_text())
    config = parse_manager_config(data, tmp_path, "manager.toml")
    assert config.link.listen == "0.0.0.0:4750" and config.enrollment.listen == "0.0.0.0:4751"
    assert config.analysis.default_rules is True
    retention = RetentionPolicy.from_mapping(config.store["retention"], "manager.toml")
    assert retention.alerts_days == 90 and retention.max_db_bytes == 10 * 1024**3


def test_reference_agent_toml_is_accepted_by_the_agent(tmp_path: Path) -> None:
    data = tomllib.loads((PACKAGING / "config" / "agent.toml").read_text())
    config = parse_agent_config(data, tmp_path, "agent.toml")
    assert config.manager_address == "manager.example.org:4750"
    assert config.spool_limit_bytes == 1024**3
    (source,) = config.sources
    assert source.bucket == "org-trail-logs"  # type: ignore[union-attr]
    assert source.interval == 300.0


def test_reference_configs_hold_no_secrets() -> None:
    for name in ("manager.toml", "agent.toml"):
        text = (PACKAGING / "config" / name).read_text().lower()
        for word in ("aws_secret_access_key", "aws_access_key_id", "aws_session_token"):
            assert word not in text, (name, word)


@pytest.mark.parametrize("script", ["postinst", "prerm", "postrm"])
def test_maintainer_scripts_are_valid_posix_sh(script: str) -> None:
    path = PACKAGING / "deb" / script
    assert path.read_text().startswith("#!/bin/sh\n")
    result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def flat_keys(table: dict, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        name = f"{prefix}{key}"
        keys.add(name)
        if isinstance(value, dict):
            keys |= flat_keys(value, f"{name}.")
    return keys


def test_reference_manager_toml_has_every_key_manager_init_writes() -> None:
    from trailwarden.manager.config import ListenConfig, render_manager_toml

    listen = ListenConfig("0.0.0.0:4750", "m:4750")
    written = flat_keys(tomllib.loads(render_manager_toml("m", listen, listen)))
    reference = flat_keys(tomllib.loads((PACKAGING / "config" / "manager.toml").read_text()))
    assert written <= reference, sorted(written - reference)


def test_reference_agent_toml_documents_every_option() -> None:
    from dataclasses import fields

    from trailwarden.agent.config import render_agent_toml
    from trailwarden.common.schema.sources import CloudTrailSourceConfig

    text = (PACKAGING / "config" / "agent.toml").read_text()
    reference = tomllib.loads(text)
    written = flat_keys(tomllib.loads(render_agent_toml("a", "m:4750")))
    assert written <= flat_keys(reference), sorted(written - flat_keys(reference))
    source_keys = set(reference["sources"][0])
    for option in fields(CloudTrailSourceConfig):
        assert option.name in source_keys or f"# {option.name} = " in text, option.name
