"""docs/RULES.md holds the default ruleset's tables as the generator writes them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trailwarden.manager.analysis.rules import Ruleset
from trailwarden.manager.ruleset.document import BEGIN, COMMAND, END, render, updated

RULES_MD = Path(__file__).resolve().parents[3] / "docs" / "RULES.md"


def test_committed_rules_md_is_what_the_rules_generate(default_ruleset: Ruleset) -> None:
    committed = RULES_MD.read_text(encoding="utf-8")
    fresh = updated(committed, render(default_ruleset))
    assert fresh == committed, (
        f"docs/RULES.md differs from the default ruleset (a rule was added or changed): run "
        f"`{COMMAND}` (or `trailwarden rules doc`) and commit docs/RULES.md"
    )


def test_every_rule_has_a_row_with_its_mitre_tactic_and_tests(default_ruleset: Ruleset) -> None:
    generated = render(default_ruleset)
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in generated.splitlines()}
    for rule_id in default_ruleset.rules:
        assert rule_id in rows, f"rule {rule_id} has no row"
    row = rows["80500"]
    assert "T1562.008 Disable or Modify Cloud Logs (Defense Evasion)" in row
    assert "eventName: StopLogging, DeleteTrail" in row and "succeeded (no errorCode)" in row
    assert "pci_dss: 10.5.2" in row
    # A | inside a pattern would split the table's cells: it is escaped.
    assert "^arn:aws\\w*:iam::aws:policy/AdministratorAccess$\\|" in rows["80506"]


def test_the_command_rewrites_only_between_the_markers_and_checks(tmp_path: Path) -> None:
    page = tmp_path / "RULES.md"
    page.write_text(f"# Rules\n\nprose kept\n\n{BEGIN}\nstale\n{END}\n\nmore prose\n")
    run = [sys.executable, "-m", "trailwarden.manager.ruleset.document"]
    stale = subprocess.run([*run, "--check", str(page)], capture_output=True, text=True)
    assert stale.returncode == 1 and COMMAND in stale.stderr
    assert subprocess.run([*run, str(page)], capture_output=True).returncode == 0
    text = page.read_text()
    assert text.startswith("# Rules\n\nprose kept\n\n") and text.endswith(f"{END}\n\nmore prose\n")
    assert "stale" not in text and "| 80500 | 12 |" in text
    assert subprocess.run([*run, "--check", str(page)], capture_output=True).returncode == 0
    missing = tmp_path / "NOMARKERS.md"
    missing.write_text("# no markers\n")
    refused = subprocess.run([*run, str(missing)], capture_output=True, text=True)
    assert refused.returncode == 1 and BEGIN in refused.stderr
