"""What every console page and API endpoint works with.

The console runs on its own event loop thread (serving.py); the manager's gRPC servers run on
another. Blocking calls (the store, the registry, argon2) go to worker threads; anything that
touches the link sessions (asyncio objects of the manager's loop) goes through
`call_on_manager_loop`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.analysis.rules import Ruleset
from trailwarden.manager.config import ManagerConfig
from trailwarden.manager.console.ratelimit import LoginLimiter
from trailwarden.manager.console.sessions import LoginSessions
from trailwarden.manager.link.sessions import Sessions
from trailwarden.manager.store.base import AlertStore
from trailwarden.manager.users.accounts import Accounts

T = TypeVar("T")

MANAGER_CALL_TIMEOUT_SECONDS = 30.0


@dataclass
class ConsoleContext:
    """The manager's parts as the console sees them (one per running console)."""

    store: AlertStore
    """Alerts, read through manager/store/query.py like the Admin API."""
    registry: Registry
    """Agents, tokens and the audit log."""
    link_sessions: Sessions
    """Live agent links (asyncio objects of the manager's loop: see call_on_manager_loop)."""
    config: ManagerConfig
    users: Accounts
    """Console users: policy, hashing and their store (``users.store``)."""
    manager_loop: asyncio.AbstractEventLoop | None = None
    """The loop the gRPC servers and link sessions run on; None when there is none (tests)."""
    running_rules: Callable[[], Ruleset] | None = None
    """The ruleset the manager runs now (its ``RuleReloader.current``), so the rules page
    follows ``admin rules reload`` and SIGHUP; None: read from manager.toml's rule files."""
    login_sessions: LoginSessions = field(init=False)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)

    def __post_init__(self) -> None:
        self.login_sessions = LoginSessions(
            self.users.store,
            ttl_seconds=self.config.console.session_ttl_seconds,
            idle_seconds=self.config.console.idle_timeout_seconds,
            clock=time.time,
        )

    def audit(self, actor: str, action: str, detail: str, target: str = "") -> None:
        """One entry in the manager's audit log (the one `admin audit` shows). Blocking."""
        self.registry.audit(actor, action, target, detail)

    def call_on_manager_loop(
        self,
        make: Callable[[], Coroutine[Any, Any, T]],
        timeout: float = MANAGER_CALL_TIMEOUT_SECONDS,
    ) -> T:
        """Run the coroutine ``make()`` on the manager's loop and wait for it (worker thread)."""
        if self.manager_loop is None:
            return asyncio.run(make())
        future = asyncio.run_coroutine_threadsafe(make(), self.manager_loop)
        return future.result(timeout)


def actor_for(user_name: str) -> str:
    """The audit log's actor for a console user (``console:<name>``)."""
    return f"console:{user_name}"
