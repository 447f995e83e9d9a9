"""Console users and sessions as the rest of the manager sees them, and the store protocol.

A session is known to the store only by the SHA-256 of its id: the id itself lives in the
browser's cookie and nowhere else, so a copy of the database lets nobody in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class UserRole(Enum):
    """What a console user may do: a viewer reads, an admin also changes things."""

    VIEWER = "viewer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The user a console request runs for (``request.state.user``)."""

    name: str
    role: str
    """``"viewer"`` or ``"admin"`` (a `UserRole` value)."""

    @property
    def is_admin(self) -> bool:
        return self.role == UserRole.ADMIN.value


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A stored user, without its password hash (that never leaves the store)."""

    name: str
    role: str
    created_ms: int
    created_by: str
    password_changed_ms: int
    last_login_ms: int
    active_sessions: int


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A live session as stored: whose, and its clock."""

    user: ConsoleUser
    created_ms: int
    last_used_ms: int
    expires_ms: int
    """Absolute end: ``created_ms`` + the session lifetime at login."""
    address: str


class UserStore(Protocol):
    """Users and their sessions. Every method is blocking: call it off the serving loop."""

    def add_user(self, name: str, role: UserRole, password_hash: str, actor: str) -> UserRecord:
        """Create ``name``; ConfigError when it exists."""
        ...

    def list_users(self) -> list[UserRecord]: ...

    def remove_user(self, name: str, actor: str) -> int:
        """Delete ``name`` and every session of it; returns the sessions ended.
        NotFoundError when there is no such user."""
        ...

    def set_password_hash(self, name: str, password_hash: str, actor: str) -> int:
        """Replace the hash and end every session of ``name``; returns the sessions ended."""
        ...

    def password_hash(self, name: str) -> tuple[ConsoleUser, str] | None:
        """The user and its stored hash, for verifying a login (None: no such user)."""
        ...

    def rehash(self, name: str, password_hash: str) -> None:
        """Store a fresher hash of the same password (parameters raised); sessions stay."""
        ...

    def create_session(
        self, id_hash: str, name: str, at_ms: int, expires_ms: int, address: str
    ) -> None:
        """Record a new session and the user's last login."""
        ...

    def session(self, id_hash: str) -> StoredSession | None: ...

    def touch_session(self, id_hash: str, at_ms: int) -> None: ...

    def delete_session(self, id_hash: str) -> None: ...

    def delete_expired_sessions(self, at_ms: int, idle_before_ms: int) -> int: ...
