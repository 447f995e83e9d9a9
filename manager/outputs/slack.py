"""The Slack output: alerts as incoming-webhook messages (Block Kit), several to a message.

Each message carries ``text`` (the notification line and the fallback of clients without
blocks) and ``blocks``: a header with the count and the top level, then one section per alert
with its rule id, level and description (linked to the alert in the web console when
``console_url`` is set), principal, source IP, account/region and event time. At most
``ALERTS_PER_MESSAGE`` alerts go in one message (Slack takes 50 blocks; a message of a screen
is what a channel can read), so a page of 500 alerts is 25 messages, in store order.

Mattermost and Rocket.Chat take the same body on their Slack-compatible webhooks. The
answers, retries and the rule for a refused message are those of the webhook (``http_post.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from trailwarden.manager.outputs.config import SlackOutput
from trailwarden.manager.outputs.http_post import HttpOutput, Poster
from trailwarden.manager.store.base import StoredAlert

ALERTS_PER_MESSAGE = 20
"""Alerts per Slack message: one section block each, plus the header (Slack's limit is 50)."""
SECTION_TEXT_LIMIT = 3000
"""Slack refuses a section whose text is longer (a rule description can be long)."""
HEADER_TEXT_LIMIT = 150
"""And a header longer than this."""


def escape(text: str) -> str:
    """Slack mrkdwn: ``&``, ``<`` and ``>`` are control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alert_link(console_url: str, alert_id: str) -> str:
    """The alert's page in the web console ('' when the console's address is not known)."""
    return f"{console_url}/alerts/{quote(alert_id, safe='')}" if console_url else ""


def summary(alerts: Sequence[StoredAlert]) -> str:
    top = max(a.level for a in alerts)
    if len(alerts) == 1:
        a = alerts[0]
        return f"TrailWarden alert, level {a.level}: rule {a.rule_id} {a.description}"
    return f"{len(alerts)} TrailWarden alerts, top level {top}"


def message(alerts: Sequence[StoredAlert], console_url: str = "") -> dict[str, Any]:
    """The incoming-webhook body for these alerts."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": summary(alerts)[:HEADER_TEXT_LIMIT]},
        }
    ]
    for alert in alerts:
        title = f"Rule {alert.rule_id} (level {alert.level}): {escape(alert.description)}"
        link = alert_link(console_url, alert.id)
        heading = f"*<{link}|{title}>*" if link else f"*{title}*"
        facts = [
            ("Principal", alert.user),
            ("Source IP", alert.source_ip),
            ("Account/region", "/".join(p for p in (alert.account, alert.region) if p)),
            ("Event time", alert.event_time),
        ]
        lines = [f"*{name}:* {escape(value)}" for name, value in facts if value]
        text = "\n".join([heading, *lines])[:SECTION_TEXT_LIMIT]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {"text": escape(summary(alerts)), "blocks": blocks}


class Slack(HttpOutput):
    chunk_size = ALERTS_PER_MESSAGE

    def __init__(self, config: SlackOutput, home: Path) -> None:
        super().__init__(config, home)
        self.console_url = config.console_url

    def send(self, session: Poster, chunk: Sequence[StoredAlert]) -> None:
        session.post_json(json.dumps(message(chunk, self.console_url)).encode())
