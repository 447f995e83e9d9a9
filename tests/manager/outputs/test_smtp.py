"""The e-mail output against a real local SMTP server with STARTTLS (a test CA's certificate)."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from tests.manager.outputs.conftest import ReceiverPki
from tests.manager.outputs.receivers import SmtpReceiver, wait_until
from tests.manager.store.factory import make_alert
from trailwarden.common import tls
from trailwarden.common.errors import ConfigError, OutputError
from trailwarden.manager.outputs.config import AlertSelection, EmailOutput
from trailwarden.manager.outputs.delivery import Delivery
from trailwarden.manager.outputs.smtp import EmailDigest
from trailwarden.manager.store.sqlite.alerts import SqliteAlertStore

PASSWORD = "smtp-pass-0600"


@pytest.fixture
def smtp(pki: ReceiverPki) -> Iterator[SmtpReceiver]:
    server = SmtpReceiver(pki.server)
    yield server
    server.close()


def digest(
    port: int, home: Path, ca_file: Path, *, mode: int = 0o600, **overrides: object
) -> EmailDigest:
    secret = home / "smtp.password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(mode)
    values: dict[str, object] = {
        "name": "oncall",
        "host": "127.0.0.1",
        "port": port,
        "sender": "trailwarden@example.org",
        "to": ("oncall@example.org", "soc@example.org"),
        "username": "tw",
        "password_file": "smtp.password",
        "ca_file": str(ca_file),
        "timeout_seconds": 5.0,
        "console_url": "https://manager.example.org:4752",
        **overrides,
    }
    return EmailDigest(EmailOutput(**values), home)  # type: ignore[arg-type]


def message(data: bytes) -> Message:
    return email.message_from_bytes(data)


def test_a_burst_over_several_commits_is_one_digest_over_starttls(
    store: SqliteAlertStore, smtp: SmtpReceiver, pki: ReceiverPki, tmp_path: Path
) -> None:
    # The loop's first pass gathers as every later one does: the commits below may land before
    # the thread runs at all (on a loaded machine they did, and the burst split in two).
    delivery = Delivery(
        store, digest(smtp.port, tmp_path, pki.ca_file), gather_seconds=2.0, poll_seconds=2.0
    )
    delivery.prepare()
    delivery.start()
    alerts = [make_alert(level=5), make_alert(level=12, rule_id="80255"), make_alert(level=7)]
    for alert in alerts:  # three commits, as three agent batches would be
        store.commit([], [alert])
        delivery.notify()
    wait_until(lambda: delivery.snapshot()["delivered"] == 3, what="the digest")
    delivery.stop()
    (mail,) = smtp.log.mails
    assert mail.tls and mail.sender == "trailwarden@example.org"
    assert mail.recipients == ["oncall@example.org", "soc@example.org"]
    assert smtp.log.logins == [("tw", PASSWORD, True)]  # credentials only after STARTTLS
    assert smtp.log.commands.index("STARTTLS") < smtp.log.commands.index("AUTH")
    parsed = message(mail.data)
    assert parsed["Subject"] == "[TrailWarden] 3 alerts, top level 12"
    assert parsed["To"] == "oncall@example.org, soc@example.org"
    text = parsed.get_payload(decode=True).decode()  # type: ignore[union-attr]
    for alert in alerts:
        assert f"Rule {alert.rule.id} (level {alert.rule.level})" in text
        assert f"https://manager.example.org:4752/alerts/{alert.id}" in text
    assert text.index(alerts[0].id) < text.index(alerts[1].id) < text.index(alerts[2].id)
    assert "Principal: alice" in text and "Source IP: 198.51.100.7" in text


def test_a_server_without_starttls_gets_nothing_and_the_alerts_wait(
    store: SqliteAlertStore, pki: ReceiverPki, tmp_path: Path
) -> None:
    plain = SmtpReceiver(pki.server, offer_starttls=False)
    try:
        delivery = Delivery(store, digest(plain.port, tmp_path, pki.ca_file))
        delivery.prepare()
        store.commit([], [make_alert(level=9)])
        with pytest.raises(OutputError, match="does not offer STARTTLS"):
            delivery.deliver_pending()
        assert plain.log.logins == [] and plain.log.mails == []
        assert "MAIL" not in plain.log.commands and "AUTH" not in plain.log.commands
        assert store.output_cursor("oncall") == 0
        delivery.stop(final_pass=False)
    finally:
        plain.close()


def test_a_certificate_from_another_ca_is_refused(
    store: SqliteAlertStore, smtp: SmtpReceiver, tmp_path: Path
) -> None:
    _, other_ca = tls.create_ca("Someone Else")
    other = tmp_path / "other-ca.pem"
    other.write_bytes(tls.cert_to_pem(other_ca))
    delivery = Delivery(store, digest(smtp.port, tmp_path, other))
    delivery.prepare()
    store.commit([], [make_alert()])
    with pytest.raises(OutputError, match="CERTIFICATE_VERIFY_FAILED"):
        delivery.deliver_pending()
    assert smtp.log.logins == [] and smtp.log.mails == []
    delivery.stop(final_pass=False)


def test_a_password_file_others_can_read_is_refused(pki: ReceiverPki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"oncall: password_file: .*chmod 600"):
        digest(25, tmp_path, pki.ca_file, mode=0o644)


def test_filters_leave_a_page_without_a_message(
    store: SqliteAlertStore, smtp: SmtpReceiver, pki: ReceiverPki, tmp_path: Path
) -> None:
    output = digest(smtp.port, tmp_path, pki.ca_file, selection=AlertSelection(min_level=12))
    delivery = Delivery(store, output)
    delivery.prepare()
    store.commit([], [make_alert(level=3), make_alert(level=5)])
    delivery.deliver_pending()
    assert smtp.log.mails == [] and smtp.log.commands == []  # no connection at all
    top = make_alert(level=13, description="Root login")
    store.commit([], [top])
    delivery.deliver_pending()
    (mail,) = smtp.log.mails
    assert message(mail.data)["Subject"] == "[TrailWarden] level 13: Root login"
    delivery.stop()
