"""Per-output counters on /metrics: delivered, failures, retries, refused, backlog."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.manager.outputs.receivers import HttpReceiver, Request, wait_until
from tests.manager.store.factory import make_alert
from trailwarden.manager.link.sessions import Sessions
from trailwarden.manager.observability import ManagerCollector, manager_registry
from trailwarden.manager.outputs.config import WebhookOutput
from trailwarden.manager.outputs.delivery import Delivery
from trailwarden.manager.outputs.webhook import ALERT_ID_HEADER, Webhook
from trailwarden.manager.pipeline.ingest import PipelineCounters
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore


def scrape(counters: PipelineCounters) -> dict[str, float]:
    text = generate_latest(manager_registry(ManagerCollector(counters, Sessions()))).decode()
    return {
        f"{sample.name}{{{sample.labels.get('output', '')}}}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name.startswith("trailwarden_output_")
    }


def test_the_counters_move_by_what_happened(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    alerts = [make_alert() for _ in range(5)]
    calls = {"n": 0}

    def answer(request: Request) -> int:
        calls["n"] += 1
        if calls["n"] <= 2:
            return 503  # two failed attempts first
        return 400 if request.headers[ALERT_ID_HEADER] == alerts[0].id else 200

    receiver.answer = answer
    receiver.open()
    output = Webhook(WebhookOutput(name="soc-hook", url=receiver.url), tmp_path)
    delivery = Delivery(store, output, retry_seconds=0.02, max_retry_seconds=0.05)
    delivery.prepare()
    counters = PipelineCounters()
    counters.outputs = [delivery]
    store.commit([], alerts)
    delivery.start()
    delivery.notify()
    wait_until(lambda: len(receiver.accepted) == 4, what="the four accepted alerts")
    wait_until(lambda: delivery.backlog == 0, what="the cursor past them")
    delivery.stop()
    metrics = scrape(counters)
    assert metrics["trailwarden_output_failures_total{soc-hook}"] == 2
    assert metrics["trailwarden_output_retries_total{soc-hook}"] == 2
    assert metrics["trailwarden_output_refused_alerts_total{soc-hook}"] == 1
    assert metrics["trailwarden_output_delivered_alerts_total{soc-hook}"] == 4  # not the refused
    assert delivery.snapshot()["delivered"] == 5  # what the cursor passed
    assert metrics["trailwarden_output_backlog_alerts{soc-hook}"] == 0
