"""Shell completion and help text: generated from the real parser, driven in a real bash."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.system import run_cli
from trailwarden.common.cli import build_parser


def undocumented_flags() -> list[str]:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif (
                not isinstance(action, argparse._HelpAction | argparse._VersionAction)
                and not (action.help or "").strip()
            ):
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "trailwarden")
    return missing


def test_every_flag_and_argument_has_help_text() -> None:
    assert undocumented_flags() == []


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_cli("completion", "bash")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("completion") / "trailwarden.bash"
    path.write_text(result.stdout)
    return path


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (``""`` = an empty word)."""
    bash = shutil.which("bash")
    assert bash is not None
    array = " ".join(f"'{w}'" for w in ("trailwarden", *words))
    program = (
        f"source '{script}'; COMP_WORDS=({array}); COMP_CWORD={len(words)}; "
        '_trailwarden_complete; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run([bash, "-c", program], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def test_bash_completes_subcommands_flags_and_choices(bash_script: Path, tmp_path: Path) -> None:
    assert {"manager", "agent", "admin", "demo", "completion"} <= set(complete(bash_script, ""))
    assert complete(bash_script, "admin", "al") == ["alerts"]
    assert "--min-level" in complete(bash_script, "admin", "alerts", "--mi")
    # A flag's value is not taken for a subcommand: the path stays `admin alerts`.
    assert "--since" in complete(bash_script, "admin", "alerts", "--limit", "5", "--si")
    assert complete(bash_script, "completion", "") == ["bash", "zsh"]
    (tmp_path / "home-folder").mkdir()
    offered = complete(bash_script, "agent", "run", "--home", str(tmp_path / "home-"))
    assert offered == [str(tmp_path / "home-folder")]


def test_bash_completes_the_housekeeping_commands(bash_script: Path) -> None:
    assert complete(bash_script, "admin", "token", "") == ["create", "list", "revoke"]
    assert complete(bash_script, "admin", "agent", "") == ["remove", "rename"]
    assert complete(bash_script, "admin", "group", "") == ["list", "remove"]
    assert "--force" in complete(bash_script, "admin", "group", "remove", "--")


def test_zsh_script_wraps_the_bash_function() -> None:
    result = run_cli("completion", "zsh")
    assert result.returncode == 0
    assert result.stdout.startswith("#compdef trailwarden")
    assert "bashcompinit" in result.stdout and "_trailwarden_complete" in result.stdout


def test_an_unknown_shell_is_refused_in_one_line() -> None:
    result = run_cli("completion", "fish")
    assert result.returncode == 2 and "invalid choice" in result.stderr
