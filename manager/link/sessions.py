"""Live agent link sessions: who is connected, and a way to send them messages.

One session per agent: a newer stream from the same agent replaces the older one. The admin
side uses this to show `connected`, to cut a revoked agent off at once, and (config push) to
send a message to a connected agent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from trailwarden.common.model import AgentRef
from trailwarden.manager.agents.certificates import CertificateInfo


@dataclass(eq=False)
class Session:
    agent: AgentRef
    address: str
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    connected_at: float = field(default_factory=time.time)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: str = ""
    draining: bool = False
    """Shutting down: take no new batches, finish and acknowledge the queued ones, close."""
    busy: bool = False
    """A batch is being committed right now."""
    queued: int = 0
    """Batches received and not yet committed."""
    certificate: CertificateInfo | None = None
    """The certificate this stream was opened with (manager/link/renewal.py)."""
    trusted_bundle_sha256: str = ""
    """SHA-256 of the CA bundle the agent said it trusts in its hello ('' = not said)."""
    renewal_offered_at: float = 0.0
    """time.monotonic() of the last renewal offered on this stream (0 = none)."""

    def send(self, message: Any) -> None:
        self.outbox.put_nowait(message)

    def drain(self) -> None:
        self.draining = True
        if not self.busy and not self.queued:
            self.close("manager shutting down")

    def close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            self.outbox.put_nowait(None)


class Sessions:
    def __init__(self) -> None:
        self._by_agent: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_agent)

    def attach(self, session: Session) -> None:
        old = self._by_agent.get(session.agent.id)
        if old is not None:
            old.close("replaced by a newer connection from the same agent")
        self._by_agent[session.agent.id] = session

    def detach(self, session: Session) -> None:
        if self._by_agent.get(session.agent.id) is session:
            del self._by_agent[session.agent.id]

    def get(self, agent_id: str) -> Session | None:
        return self._by_agent.get(agent_id)

    def is_connected(self, agent_id: str) -> bool:
        return agent_id in self._by_agent

    def close(self, agent_id: str, reason: str) -> bool:
        session = self._by_agent.get(agent_id)
        if session is None:
            return False
        session.close(reason)
        return True

    def all(self) -> list[Session]:
        return list(self._by_agent.values())
