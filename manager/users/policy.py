"""What a console user name and password must look like.

Names are lower-case so that ``Alice`` and ``alice`` cannot be two people in the audit log.
Passwords have a minimum length (length is what makes a password strong; composition rules
mostly make them predictable) and a maximum, so a login body cannot make the server hash
megabytes.
"""

from __future__ import annotations

import re
import secrets

from trailwarden.common.errors import ConfigError
from trailwarden.manager.users.base import UserRole

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
GENERATED_PASSWORD_BYTES = 18
"""144 random bits, 24 URL-safe characters."""


def check_name(name: str) -> str:
    """``name`` if it is a valid user name, else ConfigError saying what is allowed."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"user name {name[:80]!r} refused: 1-64 characters, lower-case letters, digits "
            f"and . _ @ - (starting with a letter or digit)"
        )
    return name


def parse_role(text: str) -> UserRole:
    try:
        return UserRole(text)
    except ValueError:
        raise ConfigError(f"role {text[:40]!r} refused: expected viewer or admin") from None


def check_password(password: str, name: str) -> str:
    """``password`` if the policy accepts it for user ``name``; ConfigError otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"password refused: at least {MIN_PASSWORD_LENGTH} characters needed")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ConfigError(f"password refused: at most {MAX_PASSWORD_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise ConfigError("password refused: control characters (newline, tab, ...) not allowed")
    if password.lower() == name.lower() or name.lower() in password.lower():
        raise ConfigError("password refused: it must not contain the user name")
    return password


def generate_password() -> str:
    """A strong random password for `admin user add` to print once."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
