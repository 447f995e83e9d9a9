"""The ranges of the Admin API's numbers, shared by the servicer (which enforces them) and
``trailwarden admin`` (whose flags check them first, with one line of error).

Zero is never read as "unset": a field the request leaves out takes its default; a field set to
zero is refused (a token valid for no time, for no enrollment, a page of no alerts).
"""

from __future__ import annotations

from trailwarden.common.errors import ConfigError, TrailWardenError

DEFAULT_TOKEN_TTL_SECONDS = 3600
MAX_TOKEN_TTL_SECONDS = 30 * 86400
"""Enrollment tokens live 1 s .. 30 days."""
DEFAULT_TOKEN_USES = 1
MAX_TOKEN_USES = 10_000
"""Enrollments one token allows: 1 .. 10,000."""
DEFAULT_AUDIT_LIMIT = 100
MAX_AUDIT_LIMIT = 1000
"""Audit entries per call: 1 .. 1,000."""
DEFAULT_TOKEN_LIST_LIMIT = 100
MAX_TOKEN_LIST_LIMIT = 1000
"""Enrollment tokens per `admin token list`: 1 .. 1,000, newest first (used-up and expired
tokens are pruned after a week, so more than this is a sign of a script creating them)."""
DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 100
"""Config revisions per history page: 1 .. 100."""
MAX_REVISION = 2**62
"""Revision numbers are positive; anything past this is not one."""
RESPONSE_BUDGET_BYTES = 16 * 1024 * 1024
"""A page (alerts, history) stops growing past this many bytes and says where to go on: a
response stays far below the 64 MiB message limit whatever the rows hold."""


def bounded(
    field: str,
    value: int | None,
    default: int,
    high: int,
    low: int = 1,
    error: type[TrailWardenError] = ConfigError,
) -> int:
    """``value`` if in ``low..high``, ``default`` if absent (None); else ``error`` naming
    ``field`` (the servicer answers INVALID_ARGUMENT)."""
    if value is None:
        return default
    if not low <= value <= high:
        raise error(f"{field} must be between {low} and {high}, not {value}")
    return value


def present(message: object, field: str) -> int | None:
    """An optional proto3 number: None when the request left it out."""
    return int(getattr(message, field)) if message.HasField(field) else None  # type: ignore[attr-defined]
