"""Loading rule files: every error with file:line, lists, Wazuh-style paths, the default set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.manager.analysis.helpers import RULES, fired, record, run
from trailwarden.common.errors import RuleError, RulesetError
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset


def _errors(paths: list[Path], lists_root: Path | None = None) -> list[RuleError]:
    with pytest.raises(RulesetError) as caught:
        load_ruleset(paths, lists_root)
    return caught.value.errors


def test_broken_file_reports_every_error_with_file_and_line() -> None:
    broken = RULES / "broken.xml"
    errors = _errors([broken])
    found = {(e.line, e.reason.split(" (")[0]) for e in errors}
    assert all(e.file == str(broken) for e in errors)
    lines = sorted(e.line for e in errors)
    # duplicate id (6), missing parent (10), unknown element (16), bad regex (21),
    # level out of range + unknown attribute (24), missing list (30), frequency misuse (33)
    assert lines == [6, 10, 16, 21, 24, 24, 30, 33], found
    text = "\n".join(str(e) for e in errors)
    assert f"{broken}:6: duplicate rule id 200001" in text
    assert "parent rule 299999 (if_sid) does not exist" in text
    assert "<srcip>" in text
    assert "bad pcre2 pattern '(a)\\\\2' in <field>: invalid group reference" in text
    assert "level=42 out of range 0..16" in text
    assert "unknown attribute 'colour'" in text
    assert "lists/does-not-exist" in text
    assert "need if_matched_sid" in text


def test_the_refusal_message_lists_all_errors() -> None:
    with pytest.raises(RulesetError) as caught:
        load_ruleset([RULES / "broken.xml"])
    assert "8 error(s)" in str(caught.value)


def test_malformed_xml_names_the_line() -> None:
    errors = _errors([RULES / "malformed.xml"])
    assert len(errors) == 1
    assert errors[0].file.endswith("malformed.xml")
    assert errors[0].line == 5
    assert "mismatched tag" in errors[0].reason


def test_errors_from_several_files_are_collected_together() -> None:
    errors = _errors([RULES / "broken.xml", RULES / "malformed.xml", RULES / "nope.xml"])
    files = {Path(e.file).name for e in errors}
    assert files == {"broken.xml", "malformed.xml", "nope.xml"}


def test_cycles_are_refused(tmp_path: Path) -> None:
    rules = tmp_path / "cycle.xml"
    rules.write_text(
        '<group name="g,">\n'
        '<rule id="1" level="1"><if_sid>2</if_sid><description>a</description></rule>\n'
        '<rule id="2" level="1"><if_sid>1</if_sid><description>b</description></rule>\n'
        "</group>\n"
    )
    errors = _errors([rules])
    assert any("own ancestor" in e.reason for e in errors)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    errors = _errors([tmp_path])
    assert "no *.xml" in errors[0].reason


def test_directory_loads_every_xml_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.xml").write_text(
        '<group name="g,"><rule id="2" level="3"><if_sid>1</if_sid>'
        "<description>child</description></rule></group>"
    )
    (tmp_path / "a.xml").write_text(
        '<group name="g,"><rule id="1" level="1"><decoded_as>json</decoded_as>'
        "<description>root</description></rule></group>"
    )
    (tmp_path / "notes.txt").write_text("not a rule file")
    ruleset = load_ruleset([tmp_path])
    assert [Path(s).name for s in ruleset.sources] == ["a.xml", "b.xml"]
    assert [c.id for c in ruleset.rules["1"].children] == ["2"]


def test_wazuh_child_rules_and_list_paths_work_with_a_lists_root() -> None:
    paths = [*default_ruleset_paths(), RULES / "wazuh-style.xml"]
    # Without the lists root, the Wazuh path does not resolve next to the rule file.
    errors = _errors(paths, lists_root=RULES / "lists")
    assert "etc/lists/amazon/aws-eventnames" in str(errors[0])
    ruleset = load_ruleset(paths, lists_root=RULES)
    analyzer = Analyzer(ruleset, "m")
    outcome = run(analyzer, record(eventName="RunInstances"))
    assert fired(outcome) == "100100"
    assert outcome.alert is not None
    assert outcome.alert.rule.description == "Watched event: RunInstances"
    assert fired(run(analyzer, record(eventName="DescribeInstances"))) == "80202"


def test_default_ruleset_loads_and_keeps_wazuh_ids() -> None:
    ruleset = load_ruleset(default_ruleset_paths())
    for rule_id in (
        "80200",
        "80202",
        "80203",
        "80250",
        "80251",
        "80252",
        "80253",
        "80254",
        "80255",
    ):
        assert rule_id in ruleset.rules
    assert [r.id for r in ruleset.roots] == ["80200"]
    assert ruleset.rules["80255"].frequency == 5
    assert ruleset.rules["80255"].timeframe == 360
    for rule in ruleset.rules.values():
        if rule.id.startswith("805"):
            assert rule.mitre_ids, f"rule {rule.id} has no MITRE ID"


def test_list_files_comments_quotes_and_cdb_suffix(tmp_path: Path) -> None:
    from trailwarden.manager.analysis.rules.lists import parse_list

    entries = parse_list('# comment\n\nplain\nkey:value\n"arn:aws:iam::1:root":"admin"\n', "x")
    assert entries == {"plain": "", "key": "value", "arn:aws:iam::1:root": "admin"}
    with pytest.raises(RuleError, match="x:1: unterminated"):
        parse_list('"open:1', "x")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "admins").write_text("alice:\n")
    rules = tmp_path / "r.xml"
    rules.write_text(
        '<group name="g,">\n'
        '<rule id="1" level="3"><decoded_as>json</decoded_as>\n'
        '<list field="aws.userIdentity.userName">lists/admins.cdb</list>\n'
        "<description>admin</description></rule>\n"
        "</group>\n"
    )
    ruleset = load_ruleset([rules], lists_root=tmp_path)
    assert ruleset.rules["1"].lists[0].entries == {"alice": ""}
