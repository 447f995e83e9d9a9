"""The webhook output against a real local HTTP server: outages, refusals, filters, restarts."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.manager.outputs.conftest import ReceiverPki
from tests.manager.outputs.receivers import HttpReceiver, Request, wait_until
from tests.manager.store.factory import make_alert
from trailwarden.common.errors import ConfigError, OutputError
from trailwarden.manager.outputs.config import AlertSelection, WebhookOutput
from trailwarden.manager.outputs.delivery import Delivery
from trailwarden.manager.outputs.webhook import ALERT_ID_HEADER, Webhook
from trailwarden.manager.store.base import StoredAlert
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore

SECRET = "Bearer do-not-log-me"


def webhook(receiver: HttpReceiver, tmp_path: Path, **selection: object) -> Webhook:
    """The token comes from a 0600 headers_file, as manager.toml requires of credentials."""
    headers = tmp_path / "soc-hook.headers"
    headers.write_text(f"# the SOC's token\nAuthorization: {SECRET}\n\n")
    headers.chmod(0o600)
    config = WebhookOutput(
        name="soc-hook",
        url=receiver.url,
        headers=(("X-Source", "trailwarden"),),
        headers_file="soc-hook.headers",
        timeout_seconds=2.0,
        selection=AlertSelection(**selection),  # type: ignore[arg-type]
    )
    return Webhook(config, tmp_path)


def loop(store: SqliteAlertStore, output: Webhook) -> Delivery[StoredAlert]:
    """A delivery loop with a fast retry clock: 50 ms doubling to 400 ms, polling every 50 ms."""
    delivery = Delivery(store, output, retry_seconds=0.05, max_retry_seconds=0.4, poll_seconds=0.05)
    delivery.prepare()
    return delivery


def test_a_receiver_down_then_up_gets_every_alert_once_in_order(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    """Port closed, then answering 503, then up: nothing lost, nothing twice, store order."""
    delivery = loop(store, webhook(receiver, tmp_path))
    delivery.start()
    first = [make_alert(level=5) for _ in range(4)]
    store.commit([], first)  # the receiver's port is closed: connection refused
    delivery.notify()
    wait_until(lambda: delivery.failures >= 3, what="refused connections")
    assert receiver.requests == []
    receiver.answer = lambda request: 503  # up, but failing
    receiver.open()
    outage_started = time.monotonic()
    second = [make_alert(level=7) for _ in range(3)]
    store.commit([], second)  # committed during the outage
    delivery.notify()
    wait_until(lambda: len(receiver.requests) >= 3, what="503 answers")
    time.sleep(max(0.0, 1.5 - (time.monotonic() - outage_started)))  # a real outage window
    hits_during_outage = len(receiver.requests)
    outage = time.monotonic() - outage_started
    assert receiver.accepted == []
    receiver.answer = lambda request: 200
    bodies = receiver.wait_for(7)
    delivery.stop()
    expected = [a.id for a in first + second]
    assert [b["id"] for b in bodies] == expected
    assert len(receiver.accepted) == 7  # each once
    # Retries backed off to the 400 ms cap (each try is one 503: the page's first alert):
    # about outage / 0.4 of them, where a fixed 50 ms retry would have made outage / 0.05.
    assert 3 <= hits_during_outage <= outage / 0.4 + 3 < outage / 0.05
    state = delivery.snapshot()
    assert state["backlog"] == 0 and state["delivered"] == 7
    assert state["failures"] >= 4 and state["retries"] >= 4
    assert store.output_cursor("soc-hook") == delivery.cursor


def test_the_body_is_the_stored_alert_document_with_the_id_header(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.open()
    delivery = loop(store, webhook(receiver, tmp_path))
    alert = make_alert(level=9, rule_id="80255", description="IAM policy changed")
    store.commit([], [alert])
    assert delivery.deliver_pending() == 1
    request = receiver.accepted[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers[ALERT_ID_HEADER] == alert.id
    assert request.headers["Authorization"] == SECRET
    assert request.headers["X-Source"] == "trailwarden"
    assert request.path == "/hooks/secret-path-token"
    assert request.json() == alert.to_wazuh()
    delivery.stop()


def test_a_restart_does_not_send_again(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.open()
    delivery = loop(store, webhook(receiver, tmp_path))
    before = [make_alert() for _ in range(3)]
    store.commit([], before)
    assert delivery.deliver_pending() == 3
    delivery.stop()
    restarted = loop(store, webhook(receiver, tmp_path))  # same name: the saved cursor
    after = [make_alert() for _ in range(2)]
    store.commit([], after)
    assert restarted.deliver_pending() == 2
    restarted.stop()
    assert [b["id"] for b in receiver.accepted_bodies()] == [a.id for a in before + after]


def test_a_page_failing_halfway_resumes_after_what_was_sent(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    alerts = [make_alert() for _ in range(6)]
    failing = {alerts[3].id}

    def answer(request: Request) -> int:
        if request.headers[ALERT_ID_HEADER] in failing:
            failing.clear()  # fails once
            return 502
        return 200

    receiver.answer = answer
    receiver.open()
    delivery = loop(store, webhook(receiver, tmp_path))
    store.commit([], alerts)
    with pytest.raises(OutputError, match="HTTP 502"):
        delivery.deliver_pending()
    assert store.output_cursor("soc-hook") == 0  # the page did not count as delivered
    assert delivery.deliver_pending() == 3  # the three not yet sent
    assert [b["id"] for b in receiver.accepted_bodies()] == [a.id for a in alerts]
    delivery.stop()


def test_a_refused_alert_is_counted_and_passed_but_an_auth_failure_holds(
    store: SqliteAlertStore,
    receiver: HttpReceiver,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alerts = [make_alert() for _ in range(4)]
    token_ok = False

    def answer(request: Request) -> int:
        if not token_ok:
            return 401
        return 422 if request.headers[ALERT_ID_HEADER] == alerts[1].id else 200

    receiver.answer = answer
    receiver.open()
    output = webhook(receiver, tmp_path)
    delivery = loop(store, output)
    store.commit([], alerts)
    with caplog.at_level(logging.WARNING), pytest.raises(OutputError, match="HTTP 401"):
        delivery.deliver_pending()  # a wrong token would refuse everything: hold, drop nothing
    assert output.refused == 0 and store.output_cursor("soc-hook") == 0
    token_ok = True
    with caplog.at_level(logging.WARNING):
        delivery.deliver_pending()
    assert [b["id"] for b in receiver.accepted_bodies()] == [a.id for a in (alerts[0], *alerts[2:])]
    assert output.refused == 1 and delivery.snapshot()["refused"] == 1
    refusal = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusal and alerts[1].id in refusal[0] and "HTTP 422" in refusal[0]
    logged = caplog.text
    assert "do-not-log-me" not in logged and "secret-path-token" not in logged
    assert f"http://127.0.0.1:{receiver.port}" in logged
    delivery.stop()


def test_min_level_rules_and_groups_choose_the_alerts(
    store: SqliteAlertStore, receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.open()
    output = webhook(
        receiver, tmp_path, min_level=5, rules=("80255",), groups=("authentication_failed",)
    )
    delivery = loop(store, output)
    low = make_alert(level=3, rule_id="80255")
    by_rule = make_alert(level=6, rule_id="80255")
    by_group = make_alert(level=8, rule_id="80210", groups=("aws", "authentication_failed"))
    neither = make_alert(level=12, rule_id="80300", groups=("aws",))
    store.commit([], [low, by_rule, by_group, neither])
    delivery.deliver_pending()
    assert [b["id"] for b in receiver.accepted_bodies()] == [by_rule.id, by_group.id]
    assert store.output_cursor("soc-hook") == delivery.cursor  # the others are passed, not held
    delivery.stop()


def test_the_retry_wait_doubles_up_to_its_cap(store: SqliteAlertStore, tmp_path: Path) -> None:
    receiver = HttpReceiver()
    delivery = Delivery(store, webhook(receiver, tmp_path), retry_seconds=1, max_retry_seconds=300)
    assert [delivery.retry_wait(n) for n in (1, 2, 3, 4, 9, 10, 1000)] == [
        1,
        2,
        4,
        8,
        256,
        300,
        300,
    ]


def test_an_https_receiver_with_a_private_ca(
    store: SqliteAlertStore, receiver: HttpReceiver, pki: ReceiverPki, tmp_path: Path
) -> None:
    receiver.tls = pki.server
    receiver.open()
    config = WebhookOutput(name="tls-hook", url=receiver.url, ca_file=str(pki.ca_file))
    delivery = loop(store, Webhook(config, tmp_path))
    alert = make_alert(level=6)
    store.commit([], [alert])
    assert delivery.deliver_pending() == 1
    assert [b["id"] for b in receiver.accepted_bodies()] == [alert.id]
    delivery.stop()
    # Without the private CA the system's CAs do not know the receiver: nothing is sent.
    untrusting = loop(store, Webhook(WebhookOutput(name="no-ca", url=receiver.url), tmp_path))
    store.commit([], [make_alert()])
    with pytest.raises(OutputError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.deliver_pending()
    assert len(receiver.accepted) == 1
    untrusting.stop(final_pass=False)


def test_a_ca_file_that_cannot_be_used_is_a_config_error_naming_the_output(
    tmp_path: Path,
) -> None:
    config = WebhookOutput(name="soc-hook", url="https://127.0.0.1:1/", ca_file="missing.pem")
    with pytest.raises(ConfigError, match=r"output soc-hook: ca_file: .*missing.pem"):
        Webhook(config, tmp_path)


def test_a_headers_file_others_can_read_or_with_a_bad_line_is_refused(tmp_path: Path) -> None:
    headers = tmp_path / "h"
    headers.write_text(f"Authorization: {SECRET}\n")
    headers.chmod(0o644)
    config = WebhookOutput(name="soc-hook", url="http://127.0.0.1:1/", headers_file="h")
    with pytest.raises(ConfigError, match=r"output soc-hook: headers_file: .*chmod 600"):
        Webhook(config, tmp_path)
    headers.write_text(f"Authorization {SECRET}\n")
    headers.chmod(0o600)
    with pytest.raises(ConfigError, match=r"headers_file h: line 1: expected 'Name: value'") as bad:
        Webhook(config, tmp_path)
    assert "do-not-log-me" not in str(bad.value)
