"""What the webhook, Slack and e-mail outputs share: chosen alerts sent in chunks, with progress.

A remote receiver cannot be asked what it already holds (the alerts file can: ``recover`` reads
its last line). So a ``RemoteOutput`` remembers, in memory, the id of the last alert it has
finished with — sent, refused by the receiver, or not chosen by its filters — and ``recover``
returns it. When a page fails halfway (the receiver went down after 120 of 500 alerts), the
delivery loop replays the page from the cursor and skips through that alert: nothing is sent
twice while the manager runs. A crash between a send and the cursor commit can send the last
chunk again after the restart (the store is the only durable record); receivers that must not
see a duplicate use the alert id (``X-TrailWarden-Alert-Id`` on webhooks, ``id`` in the body).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from trailwarden.manager.outputs.config import AlertSelection
from trailwarden.manager.store.base import StoredAlert

log = logging.getLogger(__name__)

S = TypeVar("S")
"""An open connection to the receiver, for one page."""


class Refused(Exception):
    """The receiver refused these alerts for good (not retried: it would refuse them again)."""


class RemoteOutput(Generic[S]):
    """Base of outputs that send chunks of chosen alerts over a connection opened per page.

    Subclasses give ``name``, ``selection``, ``chunk_size``, ``where`` (for logs: no secrets),
    ``connect()`` and ``send(session, chunk)``; ``send`` raises OutputError to have the page
    replayed, or Refused to pass the chunk.
    """

    name: str
    selection: AlertSelection
    chunk_size: int = 1
    where: str = ""

    def __init__(self) -> None:
        self._done_through = ""
        self.sent = 0
        """Alerts the receiver accepted since start."""
        self.refused = 0
        """Alerts the receiver refused for good since start (logged, counted, passed)."""

    @property
    def min_level(self) -> int:
        return self.selection.min_level

    def connect(self) -> AbstractContextManager[S]:
        raise NotImplementedError

    def send(self, session: S, chunk: Sequence[StoredAlert]) -> None:
        raise NotImplementedError

    def recover(self) -> str:
        """The last alert this output finished with (sent, refused or not chosen)."""
        return self._done_through

    def deliver(self, batch: Sequence[StoredAlert]) -> None:
        chosen = [a for a in batch if self.selection.matches(a)]
        if chosen:
            with self.connect() as session:
                for chunk in _chunks(chosen, self.chunk_size):
                    try:
                        self.send(session, chunk)
                    except Refused as exc:
                        self.refused += len(chunk)
                        log.warning(
                            "stage=output %s: %s refused %d alert(s) for good, passed "
                            "(first %s, rule %s): %s",
                            self.name,
                            self.where,
                            len(chunk),
                            chunk[0].id,
                            chunk[0].rule_id,
                            exc,
                        )
                    else:
                        self.sent += len(chunk)
                    self._done_through = chunk[-1].id
        if batch:
            self._done_through = batch[-1].id

    def close(self) -> None:
        return None


def _chunks(alerts: list[StoredAlert], size: int) -> Iterator[list[StoredAlert]]:
    for start in range(0, len(alerts), size):
        yield alerts[start : start + size]
