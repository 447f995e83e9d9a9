"""The rules page follows a rule reload: it lists, and its rule test box tests against, the
ruleset the manager runs now — after ``trailwarden admin rules reload`` and not before it.

Its own module, so it gets its own manager (the conftest's fixtures are module-scoped) whose
rules it may change without touching the other console tests' expectations.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.system import run_cli
from tests.manager.analysis.helpers import record
from tests.manager.console.conftest import ConsoleSite, screenshot

NEW_RULE = "100900"
RULES_XML = f"""<group name="local,">
  <rule id="{NEW_RULE}" level="9">
    <if_sid>80202</if_sid>
    <field name="aws.eventName">^DeleteTrail$</field>
    <description>Local: a CloudTrail trail was deleted (rule added by a reload).</description>
    <group>aws_cloudtrail,local_reloaded,</group>
  </rule>
</group>
"""


def _rule_ids(page: Any) -> set[str]:
    page.wait_for_selector("#rules-table tbody tr")
    rows = page.query_selector_all("#rules-table tbody tr[data-rule-id]")
    return {str(row.get_attribute("data-rule-id")) for row in rows}


def _tested_rules(page: Any, records: str) -> list[str | None]:
    page.fill("#ruletest-input", records)
    page.click("#ruletest-run")
    page.wait_for_selector("#ruletest-output .ruletest-result")
    out = []
    for item in page.query_selector_all("#ruletest-output .ruletest-result"):
        rule = item.query_selector(".ruletest-rule")
        out.append(rule.get_attribute("data-rule") if rule else None)
    return out


def test_the_rules_page_shows_and_tests_the_reloaded_ruleset(
    site: ConsoleSite, browser: Any
) -> None:
    home = site.system.home
    deleted = json.dumps({"Records": [record(eventName="DeleteTrail")]})
    page = site.login(browser, "alice", "/rules")
    before = _rule_ids(page)
    assert "80202" in before and NEW_RULE not in before
    assert NEW_RULE not in _tested_rules(page, deleted)

    # The files change: the page still shows what the manager runs (it has not reloaded).
    rules = home.path / "local-rules"
    rules.mkdir()
    (rules / "local_rules.xml").write_text(RULES_XML, encoding="utf-8")
    config = home.path / "manager.toml"
    text = config.read_text()
    assert "rules = []" in text
    config.write_text(text.replace("rules = []", 'rules = ["local-rules"]', 1))
    page.reload()
    assert NEW_RULE not in _rule_ids(page)

    done = run_cli("admin", "rules", "reload", "--json", "--credentials", str(home.credentials))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert json.loads(done.stdout)["ok"] is True

    page.reload()
    after = _rule_ids(page)
    assert after == before | {NEW_RULE}
    row = page.locator(f'#rules-table tr[data-rule-id="{NEW_RULE}"]')
    assert "rule added by a reload" in row.inner_text()
    assert _tested_rules(page, deleted) == [NEW_RULE]
    assert page.js_errors == []
    screenshot(page, "rules-after-reload")
    page.context.close()
