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

from trailwarden.manager.outputs.config import WebhookOutput
from trailwarden.manager.outputs.http_post import HttpOutput, Poster
from trailwarden.manager.store.base import StoredAlert

ALERT_ID_HEADER = "X-TrailWarden-Alert-Id"


class Webhook(HttpOutput):
    """One POST per alert, over one connection per delivery page."""

    chunk_size = 1

    def __init__(self, config: WebhookOutput, home: Path) -> None:
        super().__init__(config, home, config.headers)

    def send(self, session: Poster, chunk: Sequence[StoredAlert]) -> None:
        for alert in chunk:
            session.post_json(alert.json.encode(), [(ALERT_ID_HEADER, alert.id)])
