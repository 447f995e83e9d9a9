"""Every ``trailwarden …`` command in the README and the deployment docs is accepted by the real
CLI parser, and the backup recipe in OPERATIONS.md copies a live (WAL) manager database.

Commands that need a running system are exercised for real elsewhere: the demo
(tests/integration/test_demo.py), the .deb build and systemd-analyze (test_deb.py), the
generator (tests/common/test_generator.py), the admin commands in their own areas' tests.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from trailwarden.common.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
OUR_DOCS = ("README.md", "docs/DEPLOY.md", "docs/OPERATIONS.md", "docs/TROUBLESHOOTING.md")
"""The newcomer's README and the deployment docs (paths from the repository root)."""
_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def shell_commands(name: str) -> list[str]:
    """Lines of the ```sh blocks of a doc, continuation lines joined."""
    commands: list[str] = []
    for block in _BLOCK.findall((REPO / name).read_text()):
        pending = ""
        for line in block.splitlines():
            line = line.split("  #", 1)[0].rstrip() if "  #" in line else line.rstrip()
            if not line.strip():
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            commands.append((pending + line).strip())
            pending = ""
    return commands


def trailwarden_args(command: str) -> list[str] | None:
    """The arguments after ``trailwarden`` (also behind ``sudo -u USER``), else None."""
    words = shlex.split(command)
    if words[:1] == ["sudo"] and words[1:2] == ["-u"]:
        words = words[3:]
    if not words or words[0] != "trailwarden":
        return None
    for index, word in enumerate(words):  # a redirection or pipe ends the command's arguments
        if word in {">", ">>", "|", "&&", ";", "2>"}:
            return words[1:index]
    return words[1:]


ALL_COMMANDS = [(doc, c) for doc in OUR_DOCS for c in shell_commands(doc)]
TRAILWARDEN_COMMANDS = [(doc, c) for doc, c in ALL_COMMANDS if trailwarden_args(c) is not None]


def test_the_docs_show_trailwarden_commands() -> None:
    assert len(TRAILWARDEN_COMMANDS) >= 20
    shown = {tuple(trailwarden_args(c)[:2]) for _, c in TRAILWARDEN_COMMANDS}  # type: ignore[index]
    for expected in (
        ("manager", "init"),
        ("agent", "enroll"),
        ("admin", "revoke"),
        ("demo",),
        ("generate", "--events"),
    ):
        assert any(s[: len(expected)] == expected for s in shown), expected


@pytest.mark.parametrize(("doc", "command"), TRAILWARDEN_COMMANDS)
def test_documented_command_parses(doc: str, command: str) -> None:
    args = trailwarden_args(command)
    assert args is not None
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parsed = build_parser().parse_args(args)
    except SystemExit as exc:  # argparse refuses (2) or --version/--help printed (0)
        assert exc.code == 0, f"{doc}: {command}\n{errors.getvalue()}"
        return
    assert callable(parsed.func), f"{doc}: {command}"


def test_backup_recipe_copies_a_live_wal_database(tmp_path: Path) -> None:
    home = tmp_path / "manager"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from trailwarden.common.cli import main; sys.exit(main())",
            "manager",
            "init",
            "--home",
            str(home),
            "--server-name",
            "localhost",
            "--listen-host",
            "127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    database = home / "manager.db"
    # A writer holding the WAL open with uncheckpointed pages, as a running manager does.
    writer = sqlite3.connect(database)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE IF NOT EXISTS backup_probe (n INTEGER)")
    writer.execute("INSERT INTO backup_probe VALUES (42)")
    writer.commit()
    recipe = next(c for _, c in ALL_COMMANDS if "src.backup(dst)" in c)
    words = shlex.split(recipe)
    code_index = words.index("-c") + 1
    target = tmp_path / "backup.db"
    try:
        subprocess.run(
            [sys.executable, "-c", words[code_index], str(database), str(target)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    finally:
        writer.close()
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT n FROM backup_probe").fetchall() == [(42,)]
        tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master")}
        assert "schema_migrations" in tables
    finally:
        copy.close()
