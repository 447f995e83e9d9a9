"""The console in a real browser against a real manager holding real alerts.

Headless Debian Chromium (Playwright) signs in through the login form of the manager's own
HTTPS console, where an enrolled agent has sent 204 real CloudTrail records over its mutual-TLS
link. Screenshots of every page land in test-artifacts/console/.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.fixtures.system import run_cli
from tests.manager.console.conftest import EVENTS, ConsoleSite, screenshot
from trailwarden.manager.store.query import alert_query_from_mapping

pytestmark = pytest.mark.slow

# The records' CloudTrail eventTime span (2023-07-10 11:42-12:07 UTC) inside a custom range.
FROM, TO = "2023-07-10T11:00:00Z", "2023-07-10T13:00:00Z"
RANGE = f"range=custom&from={FROM}&to={TO}"
CHART_PANELS = (
    "sources",
    "accounts",
    "buckets",
    "regions",
    "iam-events",
    "events-by-source",
    "events-by-bucket",
    "geolocation",
    "iam-rules",
    "levels",
    "principals",
    "source-ips",
    "errors",
)
WAZUH_TITLES = (
    "Sources",
    "Accounts",
    "Buckets",
    "Regions",
    "Events by source over time",
    "Events by S3 bucket over time",
    "Geolocation map",
    "IAM events",
    "IAM alerts by rule over time",
)


def wait_for_panels(page: Any) -> None:
    page.wait_for_selector("#panels section[data-panel]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#panels section[data-panel]')]"
        ".every(s => s.getAttribute('aria-busy') === 'false')",
        timeout=30_000,
    )


def api(page: Any, path: str, *, method: str = "GET", body: str = "", csrf: bool = True) -> Any:
    """Call the console API from inside the signed-in page (its cookies, its CSRF token)."""
    return page.evaluate(
        """async ([path, method, body, csrf]) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const headers = {"Content-Type": "application/json"};
            if (csrf) headers["X-CSRF-Token"] = token;
            const r = await fetch(path, method === "GET" ? {} : {method, headers, body});
            return {status: r.status, body: await r.text()};
        }""",
        [path, method, body, csrf],
    )


def test_overview_renders_every_panel_and_its_total_is_admin_stats(
    site: ConsoleSite, browser: Any
) -> None:
    page = site.login(browser, "alice", f"/?{RANGE}")
    wait_for_panels(page)
    titles = page.locator("#panels section h2").all_inner_texts()
    for title in WAZUH_TITLES:
        assert title in titles, titles
    for name in CHART_PANELS:
        panel = page.locator(f'section[data-panel="{name}"]')
        assert panel.locator(".state.error").count() == 0, panel.inner_text()
        assert panel.locator("canvas").count() >= 1, f"panel {name} drew no chart"
    shown = int(page.locator("#total-count").get_attribute("data-count"))
    stats = run_cli(
        "admin",
        "stats",
        "--from",
        FROM,
        "--to",
        TO,
        "--json",
        "--credentials",
        str(site.system.home.credentials),
    )
    assert stats.returncode == 0, stats.stderr
    assert shown == json.loads(stats.stdout)["total"] > 150
    assert page.locator("#total-count").inner_text() == f"{shown:,}"  # thousands separator
    assert "UTC" in page.locator("#range-note").inner_text()
    assert page.js_errors == []
    screenshot(page, "overview-1366")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(300)
    screenshot(page, "overview-1920")
    # An empty range says so instead of drawing nothing.
    page.goto(f"{site.url}/?range=15m")
    wait_for_panels(page)
    assert "widen it" in page.locator('section[data-panel="accounts"]').inner_text()
    page.context.close()


def test_clicking_a_pie_slice_filters_the_panels_and_the_table(
    site: ConsoleSite, browser: Any
) -> None:
    page = site.login(browser, "alice", f"/?{RANGE}")
    wait_for_panels(page)
    data = json.loads(api(page, f"/api/panels/iam-events?{RANGE}")["body"])
    first = data["buckets"][0]
    share = first["count"] / sum(b["count"] for b in data["buckets"])
    # The pie starts at 12 o'clock and runs clockwise, centred at (30%, 50%) of its box with
    # radii 35%..70% of half the shorter side: click the middle of the largest slice.
    box = page.locator('section[data-panel="iam-events"] .chart').bounding_box()
    cx, cy = box["x"] + box["width"] * 0.30, box["y"] + box["height"] * 0.50
    radius = min(box["width"], box["height"]) / 2 * 0.52
    angle = 2 * math.pi * share / 2
    page.mouse.click(cx + radius * math.sin(angle), cy - radius * math.cos(angle))
    page.wait_for_url(re.compile(r"[?&]event="))
    assert parse_qs(urlparse(page.url).query)["event"] == [first["key"]]
    wait_for_panels(page)
    chip = page.locator('#chips .chip[data-filter="event"]')
    assert first["key"] in chip.inner_text()
    assert int(page.locator("#total-count").get_attribute("data-count")) == first["count"]
    screenshot(page, "overview-filtered")
    page.click("#open-alerts")
    page.wait_for_selector("#alerts-table tbody tr")
    events = page.locator("#alerts-table tbody tr td:nth-child(7)").all_inner_texts()
    assert events and set(events) == {first["key"]}
    assert len(events) == min(first["count"], 50)
    # The chip removes the filter again.
    page.click('#chips .chip[data-filter="event"] button')
    page.wait_for_function("() => !location.search.includes('event=')")
    page.context.close()


def test_the_alerts_table_pages_exports_and_opens_an_alert_with_its_record(
    site: ConsoleSite, browser: Any
) -> None:
    page = site.login(browser, "alice", f"/alerts?{RANGE}&rule=80514")
    page.wait_for_selector("#alerts-table tbody tr")
    rows = page.locator("#alerts-table tbody tr")
    assert rows.count() == 28 and set(rows.locator("td:nth-child(4)").all_inner_texts()) == {
        "80514"
    }
    screenshot(page, "alerts")
    # Cursor paging: 204 alerts in pages of 50, no alert twice, newer/older both work.
    page.goto(f"{site.url}/alerts?{RANGE}")
    page.wait_for_selector("#alerts-table tbody tr")
    seen: list[str] = []
    while True:
        seen += [r.get_attribute("data-alert-id") for r in rows.all()]
        if page.locator("#page-next").is_disabled():
            break
        before = rows.first.get_attribute("data-alert-id")
        page.click("#page-next")
        page.wait_for_function(
            "(before) => document.querySelector('#alerts-table tbody tr')"
            "?.dataset.alertId !== before",
            arg=before,
        )
    assert len(seen) == len(set(seen)) == 204
    export = api(page, f"/api/alerts/export?{RANGE}&format=jsonl")
    lines = export["body"].splitlines()
    assert export["status"] == 200 and len(lines) == 204
    assert {json.loads(line)["id"] for line in lines} == set(seen)
    csv_rows = api(page, f"/api/alerts/export?{RANGE}&format=csv&rule=80514")["body"].splitlines()
    assert csv_rows[0].startswith("timestamp,event_time,rule_id") and len(csv_rows) == 29
    # Open an alert: rule with its MITRE link, the full record as formatted JSON, related.
    page.goto(f"{site.url}/alerts?{RANGE}&rule=80514")
    page.wait_for_selector("#alerts-table tbody tr")
    alert_id = rows.first.get_attribute("data-alert-id")
    rows.first.click()
    page.wait_for_selector("#record-json")
    assert page.url.endswith(f"/alerts/{alert_id}")
    record = json.loads(page.locator("#record-json").inner_text())
    assert record["errorCode"] == "Client.UnauthorizedOperation"
    assert record["eventName"] == "GetPasswordData" and record["eventID"]
    link = page.locator("#mitre a").first
    assert link.get_attribute("href") == "https://attack.mitre.org/techniques/T1552/005/"
    assert page.locator("#rule-id").inner_text() == "80514"
    assert page.locator("#related-table tbody tr").count() >= 1
    assert page.js_errors == []
    screenshot(page, "alert-detail")
    page.context.close()


def test_bad_query_parameters_are_refused_with_their_name(site: ConsoleSite, browser: Any) -> None:
    page = site.login(browser, "victor", "/")
    for path, words in (
        ("/api/alerts?level=99", "level"),
        ("/api/alerts?colour=red", "colour"),
        ("/api/panels/accounts?range=2w", "range"),
        ("/api/alerts?page_token=forged", "page token"),
        ("/api/alerts/123.456", "no alert"),
    ):
        reply = api(page, path)
        assert reply["status"] in (400, 404), (path, reply)
        assert words in json.loads(reply["body"])["error"], (path, reply)
    page.context.close()


def test_a_new_alert_appears_live_without_a_reload(site: ConsoleSite, browser: Any) -> None:
    page = site.login(browser, "victor", "/alerts?range=15m&basis=arrival")
    page.wait_for_selector("#table-state .muted, #table-state .empty")
    page.click("#live-toggle")
    page.wait_for_selector('#live-status[data-state="on"]')
    marker = page.evaluate("() => { window.__marker = 1; return 1; }")
    record = json.loads((EVENTS / "iam-create-user.json").read_text())["Records"][0]
    record["eventID"] = str(uuid.uuid4())
    site.system.send([json.dumps(record).encode()], "trail-bucket-prod", "live/1.json.gz")
    fresh = page.wait_for_selector("#alerts-table tbody tr.fresh", timeout=30_000)
    assert "CreateUser" in fresh.inner_text()
    assert page.evaluate("() => window.__marker") == marker  # the same page: no reload
    screenshot(page, "alerts-live")
    page.context.close()


def test_the_live_stream_resumes_after_last_event_id(site: ConsoleSite, browser: Any) -> None:
    page = site.login(browser, "victor", "/")
    _, cursor = site.system.server.store.follow(alert_query_from_mapping({}), None)
    record = json.loads((EVENTS / "iam-create-user.json").read_text())["Records"][0]
    record["eventID"] = str(uuid.uuid4())
    before = site.system.server.store.counts()["alerts"]
    site.system.send([json.dumps(record).encode()], "trail-bucket-prod", "live/2.json.gz")
    site.system.wait_for_alerts(before + 1)
    text = page.evaluate(
        """async (cursor) => {
            const ctl = new AbortController();
            const r = await fetch('/api/alerts/live', {headers: {'Last-Event-ID': String(cursor)},
                                                       signal: ctl.signal});
            const reader = r.body.getReader();
            let text = '';
            while (!text.includes('event: alert')) {
                const {value} = await reader.read();
                text += new TextDecoder().decode(value);
            }
            ctl.abort();
            return text;
        }""",
        cursor,
    )
    event = re.search(r"id: (\d+)\nevent: alert\ndata: (.*)\n", text)
    assert event and int(event.group(1)) > cursor
    assert json.loads(event.group(2))["event_name"] == "CreateUser"
    page.context.close()


def test_a_viewer_sees_no_revoke_and_the_server_refuses_it(site: ConsoleSite, browser: Any) -> None:
    agent_id = site.system.server.registry.list_agents()[0].id
    viewer = site.login(browser, "victor", "/agents")
    viewer.wait_for_selector("#agents-table tbody tr")
    assert viewer.locator("[data-revoke]").count() == 0
    assert "connected" in viewer.locator("#agents-table").inner_text()
    screenshot(viewer, "agents-viewer")
    refused = api(viewer, f"/api/agents/{agent_id}/revoke", method="POST")
    assert refused["status"] == 403, refused
    assert not site.system.server.registry.get(agent_id).revoked
    viewer.context.close()
    admin = site.login(browser, "alice", "/agents")
    admin.wait_for_selector("#agents-table tbody tr")
    assert admin.locator(f'[data-revoke="{agent_id}"]').count() == 1
    screenshot(admin, "agents-admin")
    admin.context.close()


def test_a_wrong_password_and_a_missing_csrf_token_are_refused(
    site: ConsoleSite, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert urlparse(page.url).path == "/login"
    assert "Wrong user name or password" in page.content()
    assert api_status_signed_out(page) == 401
    context.close()
    page = site.login(browser, "alice", "/rules")
    body = (EVENTS / "iam-create-user.json").read_text()
    assert api(page, "/api/rules/test", method="POST", body=body, csrf=False)["status"] == 403
    assert api(page, "/api/rules/test", method="POST", body=body)["status"] == 200
    page.context.close()


def api_status_signed_out(page: Any) -> int:
    return int(page.evaluate("async () => (await fetch('/api/alerts')).status"))


def test_the_rule_test_box_gives_what_logtest_gives(site: ConsoleSite, browser: Any) -> None:
    source = EVENTS / "signin-console-login-failures-burst.json"
    page = site.login(browser, "victor", f"/rules?{RANGE}")
    page.wait_for_selector("#rules-table tbody tr")
    fired = page.locator('#rules-table tr[data-rule-id="80514"] td:nth-child(6)').inner_text()
    assert fired == "28"
    page.fill("#ruletest-input", source.read_text())
    page.click("#ruletest-run")
    page.wait_for_selector("#ruletest-output .ruletest-result")
    shown = [
        (r.get_attribute("data-rule") if r else None)
        for r in (
            item.query_selector(".ruletest-rule")
            for item in page.query_selector_all("#ruletest-output .ruletest-result")
        )
    ]
    alerts = [
        json.loads(p) for p in page.locator("#ruletest-output .ruletest-alert").all_text_contents()
    ]
    logtest = run_cli("logtest", "--json", str(source))
    assert logtest.returncode == 0, logtest.stderr
    expected = [json.loads(line) for line in logtest.stdout.splitlines()]
    assert shown == [(e["rule"] or {}).get("id") for e in expected]
    assert "80255" in shown  # the burst's frequency rule, as logtest finds it
    wanted = [e["alert"] for e in expected if e["alert"]]
    assert [(a["rule"]["id"], a["rule"]["level"], a["rule"]["firedtimes"]) for a in alerts] == [
        (a["rule"]["id"], a["rule"]["level"], a["rule"]["firedtimes"]) for a in wanted
    ]
    # The same decoded record, but for where it was read from (the file vs the box).
    assert [without_origin(a["data"]) for a in alerts] == [
        without_origin(a["data"]) for a in wanted
    ]
    assert page.js_errors == []
    screenshot(page, "rules")
    page.context.close()


def without_origin(data: dict[str, Any]) -> dict[str, Any]:
    aws = {k: v for k, v in data["aws"].items() if k != "log_info"}
    return {**data, "aws": aws}
