"""Console login sessions and their CSRF tokens.

A session id is 256 random bits, sent to the browser once in an HttpOnly, Secure,
SameSite=Strict cookie; the store keeps only its SHA-256. A session ends at its absolute
expiry (``session_ttl`` after login), after ``idle_timeout`` without a request, at logout, or
when its user is removed or given a new password. Every login makes a new id (no fixation).

The CSRF token of a session is an HMAC of the session id, so nothing more is stored and a
token from one session is worthless in another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from trailwarden.manager.users.base import ConsoleUser, UserStore

SESSION_COOKIE = "__Host-tw_session"
"""``__Host-``: the browser accepts it only Secure, for this host, with Path=/."""
SESSION_ID_BYTES = 32
TOUCH_EVERY_SECONDS = 30.0
"""The idle clock is written at most this often per session (a write per request is waste)."""


@dataclass(frozen=True, slots=True)
class NewSession:
    id: str
    """The secret id (cookie value); never stored or logged."""
    user: ConsoleUser
    max_age_seconds: int


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token_for(session_id: str) -> str:
    digest = hmac.new(session_id.encode(), b"trailwarden-console-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(given.encode(), expected.encode())


class LoginSessions:
    """Sessions over a `UserStore`. Blocking: call from worker threads."""

    def __init__(
        self,
        store: UserStore,
        *,
        ttl_seconds: float,
        idle_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.idle_seconds = idle_seconds
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def start(self, user: ConsoleUser, address: str, replaces: str = "") -> NewSession:
        """A fresh session for ``user``; the session ``replaces`` (if any) is ended first."""
        now = self._now_ms()
        if replaces:
            self.store.delete_session(hash_session_id(replaces))
        self.store.delete_expired_sessions(now, now - int(self.idle_seconds * 1000))
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        expires = now + int(self.ttl_seconds * 1000)
        self.store.create_session(hash_session_id(session_id), user.name, now, expires, address)
        return NewSession(session_id, user, int(self.ttl_seconds))

    def resolve(self, session_id: str) -> ConsoleUser | None:
        """The user of a live session, or None (unknown, expired, idle too long: ended)."""
        if not session_id or len(session_id) > 128:
            return None
        id_hash = hash_session_id(session_id)
        stored = self.store.session(id_hash)
        if stored is None:
            return None
        now = self._now_ms()
        idle_ms = now - stored.last_used_ms
        if now >= stored.expires_ms or idle_ms >= self.idle_seconds * 1000:
            self.store.delete_session(id_hash)
            return None
        if idle_ms >= TOUCH_EVERY_SECONDS * 1000:
            self.store.touch_session(id_hash, now)
        return stored.user

    def end(self, session_id: str) -> None:
        self.store.delete_session(hash_session_id(session_id))
