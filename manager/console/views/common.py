"""What every console view shares: the parts of the manager it reads, JSON answers, the user.

Views never touch SQL: alerts come through the ``AlertStore`` protocol with queries validated by
``manager/store/query.py``; agents through the ``Registry``; rules through the ruleset
manager.toml names. Store calls block, so each runs in a worker thread (``blocking``) and the
event loop stays free for the live streams. Our errors (QueryError, NotFoundError, StoreError
...) are turned into JSON answers with a status by the console app, at its edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.analysis.rules import Ruleset
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.link.sessions import Sessions
from trailwarden.manager.store.base import AlertStore

T = TypeVar("T")


class ViewContext(Protocol):
    """What the views read from the console's context (``ConsoleContext`` provides it)."""

    @property
    def store(self) -> AlertStore: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def link_sessions(self) -> Sessions: ...

    @property
    def config(self) -> ManagerConfig: ...

    @property
    def running_rules(self) -> Callable[[], Ruleset] | None:
        """The ruleset the manager runs now (None: no manager; the rules page reads the files)."""
        ...


class JSONResponse(Response):
    """JSON through orjson (alert records are large; the standard library is slower)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


async def blocking(work: Callable[..., T], *args: Any) -> T:
    """Run a blocking store or registry call off the event loop."""
    return await asyncio.to_thread(work, *args)


def user_name(request: Request) -> str:
    """The signed-in user's name (the console's guard puts the user at ``request.state.user``)."""
    user = getattr(request.state, "user", None)
    return str(getattr(user, "name", "") or "")


def is_admin(request: Request) -> bool:
    """True for an admin: the page shows admin actions (the server checks again on each)."""
    user = getattr(request.state, "user", None)
    return bool(getattr(user, "is_admin", False))
