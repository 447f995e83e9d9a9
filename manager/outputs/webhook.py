"""The webhook output: each chosen alert's JSON document POSTed to a URL, in store order.

The body is the document the store holds for the alert (``StoredAlert.json``: Wazuh's
alerts.json shape, as in alerts/alerts.json), ``Content-Type: application/json``, with the
alert id in ``X-TrailWarden-Alert-Id`` so a receiver can drop a repeat after a manager crash.
What each HTTP answer means (delivered, refused for good, retried) is in ``http_post.py``; the
retries, with a doubling wait, are the delivery loop's (``delivery.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trailwarden.manager.outputs.config import WebhookOutput, parse_header_lines, read_secret_file
from trailwarden.manager.outputs.http_post import HttpOutput, Poster
from trailwarden.manager.store.base import StoredAlert

ALERT_ID_HEADER = "X-TrailWarden-Alert-Id"


class Webhook(HttpOutput):
    """One POST per alert, over one connection per delivery page."""

    chunk_size = 1

    def __init__(self, config: WebhookOutput, home: Path) -> None:
        headers = config.headers
        if config.headers_file:
            where = f"output {config.name}: headers_file"
            text = read_secret_file(home, config.headers_file, where)
            headers = (*headers, *parse_header_lines(text, f"{where} {config.headers_file}"))
        super().__init__(config, home, headers)

    def send(self, session: Poster, chunk: Sequence[StoredAlert]) -> None:
        for alert in chunk:
            session.post_json(alert.json.encode(), [(ALERT_ID_HEADER, alert.id)])
