"""Config push: new revisions to connected agents at once, to reconnecting agents on hello.

The link awaits ``on_hello`` before it welcomes an agent (the welcome says whether an update
follows) and calls ``on_config_status`` on its event loop; neither blocks the loop: both hand
the database work to a thread. Status reports are written in batches by one writer task (a
thousand agents acknowledging one push make a handful of transactions, not a thousand
contending ones). ``push`` sends to connected sessions right away — the message goes
out on the agent's stream within milliseconds; agents that are offline get the desired config
when their next hello shows they run something else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from trailwarden.common.errors import StoreError
from trailwarden.common.wire import link_pb2
from trailwarden.manager.central.store import ConfigStore, Desired, StatusReport
from trailwarden.manager.link.sessions import Session, Sessions

log = logging.getLogger(__name__)

STATUS_BATCH = 1000
"""Most status reports written per transaction."""


def update_message(desired: Desired) -> link_pb2.ManagerMessage:
    return link_pb2.ManagerMessage(
        config=link_pb2.ConfigUpdate(
            revision=desired.revision, hash=desired.hash, config_toml=desired.toml
        )
    )


class ConfigDistributor:
    """Connects the config store to the agent link (see the module docstring)."""

    def __init__(self, store: ConfigStore, sessions: Sessions) -> None:
        self.store = store
        self.sessions = sessions
        self._reports: asyncio.Queue[StatusReport] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- link hooks (called on the event loop) -------------------------------------------

    async def on_hello(
        self, session: Session, hello: link_pb2.Hello
    ) -> link_pb2.ManagerMessage | None:
        """The update the agent must apply, if it runs another revision than its desired one
        (the link sends it right after the welcome)."""
        return await self._hello(session, hello.applied_config_revision, hello.applied_config_hash)

    def on_config_status(self, session: Session, status: link_pb2.ConfigStatus) -> None:
        report = StatusReport(
            agent_id=session.agent.id,
            revision=status.revision,
            hash=status.hash,
            state=status.state,
            error=status.error,
        )
        log.log(
            logging.WARNING if status.state != "applied" else logging.DEBUG,
            "stage=config agent=%s revision=%d %s%s",
            session.agent.id,
            status.revision,
            status.state,
            f": {status.error}" if status.error else "",
        )
        self._queue().put_nowait(report)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_reports())

    # ---- admin side ----------------------------------------------------------------------

    def push(self, updates: Iterable[Desired]) -> int:
        """Send each update to its agent if connected; how many were sent (event loop only)."""
        sent = 0
        for desired in updates:
            session = self.sessions.get(desired.agent_id)
            if session is None or session.closed.is_set():
                continue
            session.send(update_message(desired))
            sent += 1
        return sent

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()

    # ---- internals -----------------------------------------------------------------------

    def _queue(self) -> asyncio.Queue[StatusReport]:
        if self._reports is None:
            self._reports = asyncio.Queue()
        return self._reports

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hello(
        self, session: Session, revision: int, applied_hash: str
    ) -> link_pb2.ManagerMessage | None:
        agent = session.agent.id
        try:
            desired = await asyncio.to_thread(
                self.store.record_hello, agent, revision, applied_hash
            )
        except StoreError as exc:
            log.warning("stage=config agent=%s hello not recorded: %s", agent, exc)
            return None
        if desired is None or session.closed.is_set():
            return None
        log.info(
            "stage=config agent=%s runs revision %d, sending revision %d",
            agent,
            revision,
            desired.revision,
        )
        return update_message(desired)

    async def _write_reports(self) -> None:
        queue = self._queue()
        while not queue.empty():
            batch = [queue.get_nowait() for _ in range(min(queue.qsize(), STATUS_BATCH))]
            try:
                applied = await asyncio.to_thread(self.store.record_statuses, batch)
                await asyncio.to_thread(self._note_applied, applied)
            except StoreError as exc:
                log.error("stage=config %d status report(s) not recorded: %s", len(batch), exc)

    def _note_applied(self, reports: list[StatusReport]) -> None:
        """Keep the registry's applied revision (shown by `admin agents`) current."""
        for report in reports:
            self.store.registry.record_applied(report.agent_id, report.revision, report.hash)
