"""Password hashing with argon2id (memory-hard), through argon2-cffi.

The parameters are argon2-cffi's defaults (RFC 9106's second recommendation: 64 MiB, 3
passes, 4 lanes), so one verification costs tens of milliseconds and 64 MiB. Verifications
are therefore admitted a few at a time: a flood of logins queues instead of asking the
manager for gigabytes at once. A login for a user that does not exist verifies a dummy hash,
so the failure takes as long whether or not the name exists.
"""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

CONCURRENT_HASHES = 2
"""argon2 computations at once (each holds 64 MiB while it runs)."""

_hasher = PasswordHasher()
_gate = threading.BoundedSemaphore(CONCURRENT_HASHES)
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def hash_password(password: str) -> str:
    """The argon2id encoded hash (parameters and salt included) of ``password``."""
    with _gate:
        return _hasher.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """True when ``password`` matches ``encoded``; never raises for a wrong or damaged hash."""
    with _gate:
        try:
            return _hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def burn_verification(password: str) -> None:
    """Spend what a real verification costs, for a user name that does not exist."""
    verify_password(_dummy(), password)


def needs_rehash(encoded: str) -> bool:
    """The stored hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(encoded)
    except InvalidHashError:
        return True


def _dummy() -> str:
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = hash_password("trailwarden-no-such-user-dummy")
        return _dummy_hash
