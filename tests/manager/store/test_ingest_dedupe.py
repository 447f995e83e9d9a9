"""A resent batch through the real ingest (analysis + this store + the alerts file fed by its
delivery loop) doubles nothing: not an alert row, not an alerts-file line, not an archived
event."""

from __future__ import annotations

import json
from pathlib import Path

from trailwarden.common.logfile import parse_object
from trailwarden.common.model import AgentRef, RecordBatch, SourceMeta
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import default_ruleset_paths, load_ruleset
from trailwarden.manager.outputs.alerts_file import AlertsFile
from trailwarden.manager.outputs.delivery import Delivery
from trailwarden.manager.pipeline.ingest import Ingest
from trailwarden.manager.pipeline.workers import InlineAnalysis
from trailwarden.manager.store.query import build_alert_query, build_stats_query
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore
from trailwarden.manager.store.sqlite.database import Database

EVENTS = Path(__file__).resolve().parents[2] / "files" / "events"


def load_records() -> tuple[bytes, ...]:
    records: list[bytes] = []
    for path in sorted(EVENTS.glob("*.json")):
        records.extend(r.raw for r in parse_object(path.read_bytes(), str(path)).records)
    return tuple(records)


def test_resent_batch_stores_and_writes_nothing_twice(tmp_path: Path) -> None:
    database = Database(tmp_path / "manager.db")
    store = SqliteAlertStore(database, archive=True)
    alerts_file = AlertsFile(tmp_path / "alerts")
    analyzer = Analyzer(load_ruleset(default_ruleset_paths()), "manager-1")
    delivery = Delivery(store, alerts_file)
    delivery.prepare()
    ingest = Ingest(store, InlineAnalysis(analyzer, store))
    agent = AgentRef(id="agent-1", name="web-1")
    records = load_records()
    batch = RecordBatch(1, SourceMeta(source="events", key=str(EVENTS)), records)

    first = ingest.process(agent, batch)
    assert delivery.deliver_pending() == first.alerts
    assert first.alerts > 0 and first.new_events == len(records)
    page = store.query(build_alert_query(limit=1000))
    lines = alerts_file.path.read_text().splitlines()
    counts = store.counts()
    assert len(page.alerts) == first.alerts == len(lines)
    assert counts["archive"] == counts["seen_events"] == len(records)

    # The ack was lost; the agent resends the same batch (twice, for good measure).
    for _ in range(2):
        again = ingest.process(agent, RecordBatch(2, batch.source, records))
        assert again.alerts == 0 and again.duplicates == len(records)
        assert delivery.deliver_pending() == 0
    assert [a.id for a in store.query(build_alert_query(limit=1000)).alerts] == [
        a.id for a in page.alerts
    ]
    assert alerts_file.path.read_text().splitlines() == lines
    assert store.counts() == counts
    by_rule = store.stats(build_stats_query(by="rule"))
    assert by_rule.total == first.alerts
    # Every line of the file is one alert in Wazuh's shape, matching the stored JSON.
    stored = {a.id: json.loads(a.json) for a in page.alerts}
    for line in lines:
        alert = json.loads(line)
        assert stored[alert["id"]] == alert
    delivery.stop()
    store.close()
    database.close()
