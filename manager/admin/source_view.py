"""A line per source under the ``admin agents`` table: where each source stands.

State, last pass, objects and records collected, and the lag behind the newest object, from
the status the agent last reported (its JSON, where 64-bit numbers arrive as text).
"""

from __future__ import annotations

from typing import Any

from trailwarden.common.timeparse import human_duration
from trailwarden.manager.admin.tables import ms_to_text


def source_line(agent_name: str, source: dict[str, Any]) -> str:
    def count(name: str) -> int:
        return int(source.get(name, 0) or 0)

    finished = count("last_pass_unix_ms")
    return (
        f"  {agent_name}: source {source.get('name', '?')} {source.get('state', '?')}, "
        f"last pass {ms_to_text(finished) + ' UTC' if finished else 'never'}, "
        f"objects {count('objects_done'):,}, records {count('records_spooled'):,}, "
        f"lag {human_duration(count('lag_ms'))}"
    )
