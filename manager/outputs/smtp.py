"""The e-mail output: digests over SMTP, STARTTLS by default, credentials only over TLS.

A burst becomes one message: the delivery loop waits ``digest_seconds`` after the first alert
of a burst (``Delivery.gather_seconds``) and hands the output a page of up to 500 alerts, which
is one message (subject: the count and the top level; body: one paragraph per alert with the
console link when ``console_url`` is set). A page that fails is sent again whole after the
wait; a message the server refuses for good (a 5xx answer to its data, e.g. too large) is
logged, counted and passed, like a webhook's 4xx.

TLS: with ``starttls = true`` (the default) the output refuses to go on when the server does not
offer STARTTLS, and verifies the server's certificate and name (the system's CAs or
``ca_file``). Credentials are sent only after STARTTLS: the config refuses ``username`` with
``starttls = false``, and the password is read from ``password_file`` (mode 0600, checked at
start), never from manager.toml.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from trailwarden.common.errors import ConfigError, OutputError, PkiError
from trailwarden.common.tls import https_client_context
from trailwarden.manager.outputs.config import EmailOutput, read_secret_file, resolve_path
from trailwarden.manager.outputs.remote import Refused, RemoteOutput
from trailwarden.manager.outputs.slack import alert_link
from trailwarden.manager.store.base import StoredAlert

ALERTS_PER_MESSAGE = 500
"""One delivery page is one message."""


def subject(alerts: Sequence[StoredAlert]) -> str:
    top = max(a.level for a in alerts)
    if len(alerts) == 1:
        description = " ".join(alerts[0].description.split())  # no line break in a header
        return f"[TrailWarden] level {top}: {description}"[:200]
    return f"[TrailWarden] {len(alerts)} alerts, top level {top}"


def body(alerts: Sequence[StoredAlert], console_url: str = "") -> str:
    paragraphs = []
    for a in alerts:
        lines = [f"Rule {a.rule_id} (level {a.level}): {a.description}"]
        for name, value in (
            ("Principal", a.user),
            ("Source IP", a.source_ip),
            ("Account/region", "/".join(p for p in (a.account, a.region) if p)),
            ("Event", f"{a.event_source} {a.event_name}".strip()),
            ("Event time", a.event_time),
            ("Alert", alert_link(console_url, a.id) or a.id),
        ):
            if value:
                lines.append(f"  {name}: {value}")
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs) + "\n"


class EmailDigest(RemoteOutput[smtplib.SMTP]):
    chunk_size = ALERTS_PER_MESSAGE

    def __init__(self, config: EmailOutput, home: Path) -> None:
        super().__init__()
        self.name = config.name
        self.selection = config.selection
        self.config = config
        self.where = f"smtp://{config.host}:{config.port}"
        self._password = ""
        if config.password_file:
            where = f"output {config.name}: password_file"
            self._password = read_secret_file(home, config.password_file, where).strip()
        try:
            self._context: ssl.SSLContext | None = (
                https_client_context(resolve_path(home, config.ca_file) if config.ca_file else None)
                if config.starttls
                else None
            )
        except PkiError as exc:
            raise ConfigError(f"output {config.name}: ca_file: {exc}") from exc

    def connect(self) -> AbstractContextManager[smtplib.SMTP]:
        return self._session()

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        config = self.config
        try:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        except (OSError, smtplib.SMTPException) as exc:
            raise OutputError(f"{self.where}: cannot connect: {exc}") from exc
        try:
            try:
                smtp.ehlo()
                if self._context is not None:
                    if not smtp.has_extn("starttls"):
                        raise OutputError(
                            f"{self.where}: the server does not offer STARTTLS; not sending "
                            "alerts in clear (starttls = true)"
                        )
                    smtp.starttls(context=self._context)
                    smtp.ehlo()
                if config.username:
                    smtp.login(config.username, self._password)
            except (OSError, smtplib.SMTPException) as exc:
                raise OutputError(f"{self.where}: {type(exc).__name__}: {exc}") from exc
            yield smtp
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def send(self, session: smtplib.SMTP, chunk: Sequence[StoredAlert]) -> None:
        message = EmailMessage()
        message["Subject"] = subject(chunk)
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.to)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2])
        message.set_content(body(chunk, self.config.console_url))
        try:
            session.send_message(message, self.config.sender, list(self.config.to))
        except smtplib.SMTPDataError as exc:
            if exc.smtp_code >= 500:
                raise Refused(f"SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
            raise OutputError(f"{self.where}: SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise OutputError(f"{self.where}: {type(exc).__name__}: {exc}") from exc
