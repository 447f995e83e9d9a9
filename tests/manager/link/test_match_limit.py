"""A crafted event against a catastrophic backtracking rule, through a real manager with an
analysis worker process: the match is stopped at its limit, reported with the rule's file:line
(log, recent problems, the rule_errors counter), the event is still analysed and stored, and
the events around it go through untouched."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

from tests.fixtures.system import make_manager_home, start_link
from trailwarden.agent.enroll import enroll
from trailwarden.agent.spool import Spool
from trailwarden.common.model import SourceMeta
from trailwarden.manager.analysis.rules.regex import BACKTRACK_LIMIT_SECONDS
from trailwarden.manager.server import BackgroundManager

SOURCE = SourceMeta(
    source="test",
    bucket="org-trail",
    key="AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20/x.json.gz",
    account_id="111122223333",
    region="us-east-1",
)

LOCAL_RULES = r"""<group name="local,">
  <rule id="100500" level="9">
    <if_sid>80202</if_sid>
    <field name="aws.requestParameters.name" type="pcre2">^((a|aa)\2?)+$</field>
    <description>a back-reference in a repeated group: exponential on a near miss</description>
  </rule>
</group>
"""


def _record(name: str) -> tuple[bytes, str]:
    event_id = str(uuid.uuid4())
    record = {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeTags",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
        "requestParameters": {"name": name},
    }
    return json.dumps(record).encode(), event_id


def test_a_catastrophic_match_is_stopped_reported_and_the_batch_goes_through(
    tmp_path: Path,
) -> None:
    home = make_manager_home(tmp_path / "manager", analysis_workers=1)
    rules = home.path / "local_rules.xml"
    rules.write_text(LOCAL_RULES)
    toml = home.path / "manager.toml"
    toml.write_text(toml.read_text().replace("rules = []", 'rules = ["local_rules.xml"]'))
    manager = BackgroundManager(home.path)
    manager.start()
    spool = Spool(tmp_path / "spool.db", 10 * 1024**2)
    link = None
    try:
        server = manager.server
        assert server is not None
        agent_home = tmp_path / "agent"
        token = server.registry.create_token(3600, 1, "", "test").token
        enroll(agent_home, home.enroll_address, token, home.ca_fingerprint, "edge")
        crafted, crafted_id = _record("a" * 40 + "b")
        matching, matching_id = _record("aaaa")
        plain, plain_id = _record("prod/db-password")
        spool.put(SOURCE, [plain, crafted, matching])
        started = time.monotonic()
        link = start_link(agent_home, home.link_address, spool)
        deadline = time.monotonic() + 60
        while spool.stats().batches and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        assert spool.stats().batches == 0, "the batch was never acknowledged"
        # One stopped match costs the limit (plus the engine's check interval), not minutes.
        assert elapsed < 30, elapsed
        counters = server.counters.snapshot()
        assert counters["rule_errors"] == 1
        assert counters["records"] == 3 and counters["bad_records"] == 0
        (problem,) = [p for p in counters["recent_problems"] if "100500" in p]
        assert f"rule 100500 ({rules}:2)" in problem
        assert "record=1" in problem and "backtracking match limit" in problem
        assert f"{BACKTRACK_LIMIT_SECONDS * 1000:.0f} ms" in problem
        fired = counters["rules_fired"]
        # The crafted event still alerts on its parent rule; the others are decided normally.
        assert fired.get("100500") == 1 and fired.get("80202") == 2, fired
        db = sqlite3.connect(home.path / "manager.db")
        try:
            stored = dict(db.execute("SELECT event_id, rule_id FROM alerts").fetchall())
        finally:
            db.close()
        assert stored == {crafted_id: "80202", matching_id: "100500", plain_id: "80202"}
    finally:
        if link is not None:
            link.close()
        spool.close()
        manager.stop()
