"""The Slack output: incoming-webhook bodies posted to a real local HTTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.manager.outputs.receivers import HttpReceiver
from tests.manager.store.factory import make_alert
from trailwarden.common.errors import ConfigError
from trailwarden.manager.outputs.config import SlackOutput
from trailwarden.manager.outputs.delivery import Delivery
from trailwarden.manager.outputs.slack import ALERTS_PER_MESSAGE, Slack
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore

CONSOLE = "https://manager.example.org:4752"


def slack(receiver: HttpReceiver, tmp_path: Path, console_url: str = CONSOLE) -> Slack:
    receiver.open()
    return Slack(SlackOutput(name="secops", url=receiver.url, console_url=console_url), tmp_path)


def test_one_alert_message_names_what_an_analyst_needs(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    delivery = Delivery(store, slack(receiver, tmp_path))
    delivery.prepare()
    alert = make_alert(
        rule_id="80255",
        level=10,
        description="IAM: policy <attached> & changed",
        user="mallory",
        source_ip="203.0.113.9",
        account="222233334444",
        region="eu-west-1",
        event_time="2026-11-20T11:55:00Z",
    )
    store.commit([], [alert])
    assert delivery.deliver_pending() == 1
    (body,) = receiver.accepted_bodies()
    assert receiver.accepted[0].headers["Content-Type"] == "application/json"
    assert set(body) == {"text", "blocks"}
    assert "80255" in body["text"] and "level 10" in body["text"]
    header, section = body["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    text = section["text"]["text"]
    link = f"{CONSOLE}/alerts/{alert.id}"
    assert text.startswith(f"*<{link}|Rule 80255 (level 10): IAM: policy &lt;attached&gt; &amp; ")
    for expected in (
        "*Principal:* mallory",
        "*Source IP:* 203.0.113.9",
        "*Account/region:* 222233334444/eu-west-1",
        "*Event time:* 2026-11-20T11:55:00Z",
    ):
        assert expected in text.splitlines()
    delivery.stop()


def test_a_burst_is_batched_into_messages_in_order_and_without_a_link_when_no_console(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    delivery = Delivery(store, slack(receiver, tmp_path, console_url=""))
    delivery.prepare()
    alerts = [make_alert(level=3 + i % 9) for i in range(ALERTS_PER_MESSAGE + 5)]
    store.commit([], alerts)
    assert delivery.deliver_pending() == len(alerts)
    first, second = receiver.accepted_bodies()
    assert len(first["blocks"]) == ALERTS_PER_MESSAGE + 1 and len(second["blocks"]) == 6
    assert first["text"] == f"{ALERTS_PER_MESSAGE} TrailWarden alerts, top level 11"
    assert first["blocks"][0]["text"]["text"] == first["text"]
    sections = [b["text"]["text"] for m in (first, second) for b in m["blocks"][1:]]
    assert all(s.startswith("*Rule 80202 (level ") for s in sections)  # no <link|...>
    assert [s.split("(level ")[1].split(")")[0] for s in sections] == [
        str(a.rule.level) for a in alerts
    ]
    delivery.stop()


def test_the_url_can_come_from_a_0600_file(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.open()
    secret = tmp_path / "slack.url"
    secret.write_text(receiver.url + "\n")
    secret.chmod(0o600)
    output = Slack(SlackOutput(name="secops", url="", url_file="slack.url"), tmp_path)
    assert output.where == f"http://127.0.0.1:{receiver.port}"  # what logs name: no path
    delivery = Delivery(store, output)
    delivery.prepare()
    store.commit([], [make_alert()])
    assert delivery.deliver_pending() == 1
    assert receiver.accepted[0].path == "/hooks/secret-path-token"
    delivery.stop()
    secret.write_text("ftp://example.org/x")
    with pytest.raises(ConfigError, match=r"output secops: url_file slack.url: expected an http"):
        Slack(SlackOutput(name="secops", url="", url_file="slack.url"), tmp_path)
