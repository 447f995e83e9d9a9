"""Malformed rule and config files given to the real command line: refused, with location."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.fixtures.system import ManagerHome, run_cli
from trailwarden.manager.analysis.rules import default_ruleset_paths

AREA = "Bad input"

BROKEN_RULES = """<group name="local,">
  <rule id="100001" level="3">
    <if_sid>80202</if_sid>
    <field name="aws.eventName">^Console</field>
    <description>fine</description>
  </rule>
  <rule id="100002" level="99">
    <if_sid>80202</if_sid>
    <description>level out of range</description>
  </rule>
  <rule id="100003" level="3">
    <if_sid>80202</if_sid>
    <regex type="pcre2">(a)\\2</regex>
    <description>a back-reference to a group that does not exist</description>
  </rule>
  <rule id="100004" level="3">
    <if_sid>999999</if_sid>
    <description>unknown parent</description>
  </rule>
</group>
"""


def test_manager_refuses_to_start_on_a_broken_rule_file_naming_every_error(
    manager_home: ManagerHome,
) -> None:
    """A local rule file with an out-of-range level, a bad back-reference and an unknown parent:
    `manager run` exits non-zero before listening, naming file:line of every error, and
    `rules check` reports the same; the shipped rules alone still load."""
    rules = manager_home.path / "local_rules.xml"
    rules.write_text(BROKEN_RULES)
    toml = manager_home.path / "manager.toml"
    toml.write_text(toml.read_text().replace("rules = []", 'rules = ["local_rules.xml"]'))
    result = run_cli("manager", "run", "--home", str(manager_home.path), timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for line in (7, 13, 16):
        assert f"{rules}:{line}" in output, output
    check = run_cli("rules", "check", "--with-default", str(rules))
    assert check.returncode != 0
    assert f"{rules}:7" in check.stdout + check.stderr
    shipped = [str(p) for p in default_ruleset_paths()]
    assert run_cli("rules", "check", *shipped).returncode == 0


def test_agent_refuses_a_malformed_agent_toml_naming_file_and_key(
    running_manager: object, enrolled_agent: Callable[[str], Path]
) -> None:
    """agent.toml with a typo'd key, a list where a duration goes and an AWS secret in a
    source: `agent run` exits non-zero naming the file and the key, and never echoes the
    secret."""
    home = enrolled_agent("web-1")
    config = home / "agent.toml"
    good = config.read_text()
    cases = {
        "spool.limitt": good.replace('limit = "1GiB"', 'limitt = "1GiB"'),
        "agent.heartbeat": good.replace('heartbeat = "15s"', "heartbeat = [15]"),
        "sources[0].aws_secret_access_key": good
        + '\n[[sources]]\ntype = "cloudtrail"\nbucket = "org-trail-b"\n'
        + 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz"\n',
    }
    for key, text in cases.items():
        config.write_text(text)
        result = run_cli("agent", "run", "--home", str(home), "--once", timeout=60)
        output = result.stdout + result.stderr
        assert result.returncode != 0, key
        assert str(config) in output and key.split(".")[-1] in output, (key, output)
        assert "wJalrXUtnFEMI" not in output
        assert "Traceback" not in output


def test_agent_refuses_a_corrupt_spool_file_naming_it(
    running_manager: object, enrolled_agent: Callable[[str], Path]
) -> None:
    """A spool file overwritten with garbage (with and without SQLite's header): `agent run`
    exits non-zero naming the spool file and the reason, without a traceback, and leaves the
    file as it was (for inspection, never silently replaced)."""
    home = enrolled_agent("web-1")
    spool = home / "spool.db"
    for garbage in (b"SQLite format 3\x00" + bytes(range(256)) * 32, bytes(range(256)) * 32):
        spool.write_bytes(garbage)
        result = run_cli("agent", "run", "--home", str(home), "--once", timeout=60)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"cannot open spool {spool}" in output and "not a database" in output, output
        assert "Traceback" not in output
        assert spool.read_bytes() == garbage


def test_manager_refuses_a_corrupt_database_naming_it(manager_home: ManagerHome) -> None:
    """manager.db overwritten with garbage: `manager run` exits non-zero naming the database
    and the reason, without a traceback, and leaves the file as it was."""
    database = manager_home.path / "manager.db"
    for side in manager_home.path.glob("manager.db-*"):
        side.unlink()
    garbage = b"SQLite format 3\x00" + bytes(range(256)) * 32
    database.write_bytes(garbage)
    result = run_cli("manager", "run", "--home", str(manager_home.path), timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"cannot open database {database}" in output and "not a database" in output, output
    assert "Traceback" not in output
    assert database.read_bytes() == garbage


NOT_RULES = {
    "empty.xml": "",
    "text.xml": "just some notes, no XML at all\n",
    "comment.xml": "<!-- rules to come -->\n",
    "empty-group.xml": '<group name="local,">\n</group>\n',
    "ossec.xml": "<ossec_config><global/></ossec_config>\n",
    "rules.json": '{"rules": [{"id": 100001}]}\n',
}


def test_rules_check_refuses_a_file_that_holds_no_rules(tmp_path: Path) -> None:
    """Six files that hold no rules (empty, plain text, a comment, an empty group, an
    ossec.conf, JSON): `rules check` exits non-zero on each, naming file:line, never "OK: 0"."""
    for name, text in NOT_RULES.items():
        path = tmp_path / name
        path.write_text(text)
        check = run_cli("rules", "check", str(path))
        output = check.stdout + check.stderr
        assert check.returncode != 0, (name, output)
        assert "OK:" not in output
        assert f"{path}:1:" in output, (name, output)
        assert "holds no rules" in output or "not well-formed" in output, (name, output)


def test_manager_refuses_to_start_when_its_rules_path_loads_nothing(
    manager_home: ManagerHome,
) -> None:
    """`[analysis] rules` names a folder whose only file holds no rules: `manager run` exits
    non-zero before listening, naming the file."""
    folder = manager_home.path / "local-rules"
    folder.mkdir()
    (folder / "placeholder.xml").write_text("<!-- nothing yet -->\n")
    toml = manager_home.path / "manager.toml"
    text = toml.read_text().replace("rules = []", 'rules = ["local-rules"]')
    toml.write_text(text)
    result = run_cli("manager", "run", "--home", str(manager_home.path), timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{folder / 'placeholder.xml'}:1: holds no rules" in output, output
