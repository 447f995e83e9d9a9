"""Under `admin agents`' table: certificates about to expire, and a CA rotation's progress."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from trailwarden.common.wire import admin_pb2

EXPIRY_WARNING_DAYS = 30
"""An agent whose certificate expires within this many days is warned about (the manager
renews it over the link when it connects: manager/link/renewal.py RENEW_WITHIN_DAYS)."""
DAY_MS = 86_400_000


def certificate_warnings(
    response: admin_pb2.ListAgentsResponse, now_ms: int | None = None
) -> list[str]:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    lines: list[str] = []
    for agent in response.agents:
        if agent.status == "revoked" or not agent.cert_not_after_unix_ms:
            continue
        left_ms = agent.cert_not_after_unix_ms - now
        when = _date(agent.cert_not_after_unix_ms)
        if left_ms <= 0:
            lines.append(f"  WARNING {agent.name}: certificate expired on {when}; re-enroll it")
        elif left_ms < EXPIRY_WARNING_DAYS * DAY_MS:
            lines.append(
                f"  WARNING {agent.name}: certificate expires in {left_ms // DAY_MS} days "
                f"({when}); it is renewed when the agent next connects"
            )
    if response.HasField("ca_rotation"):
        rotation = response.ca_rotation
        waiting = [
            a.name for a in response.agents if a.status != "revoked" and a.cert_on_retiring_ca
        ]
        lines.append(
            f"CA rotation in progress since {_date(rotation.started_unix_ms)} (overlap ends "
            f"{_date(rotation.overlap_ends_unix_ms)}): new CA {rotation.new_ca_sha256[:16]}…, "
            f"retiring CA {rotation.retiring_ca_sha256[:16]}…"
        )
        if waiting:
            lines.append(
                f"  {len(waiting)} agent(s) still on the retiring CA: {', '.join(waiting)}"
            )
        else:
            lines.append("  every agent has renewed: trailwarden manager ca finish --home DIR")
    return lines


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
