"""PostgreSQL connection URLs: recognising one, and showing one without its password.

A URL may carry a password (``postgresql://user:secret@host/db`` or ``?password=secret``); every
message, log line and error that names the database uses ``mask_url`` so the secret never
reaches a log, an alert or an admin's terminal.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from trailwarden.common.errors import ConfigError

SCHEMES = ("postgresql", "postgres")
"""URL schemes libpq accepts for a PostgreSQL database."""
MASK = "***"

_PASSWORD_IN_NETLOC = re.compile(r"^(?P<user>[^:@/]*):(?P<password>[^@]*)@")


def is_postgres_url(text: str) -> bool:
    """True for ``postgresql://...`` or ``postgres://...``."""
    return urlsplit(text).scheme.lower() in SCHEMES


def mask_url(url: str) -> str:
    """``url`` with any password (in the user part or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = _PASSWORD_IN_NETLOC.sub(lambda m: f"{m['user']}:{MASK}@", parts.netloc)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(url: str) -> str:
    """The URL's password ('' if none), so error texts can be scrubbed of it too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    found = unquote(parts.password or "")
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() == "password":
            found = value
    return found


def scrub(message: str, url: str) -> str:
    """``message`` with the URL's password, and the URL itself, masked (driver errors may echo
    either)."""
    secret = password_of(url)
    text = message.replace(url, mask_url(url))
    for form in {secret, quote(secret, safe="")} if secret else ():
        text = text.replace(form, MASK)  # as typed in the URL and as the server saw it
    return text


def check_store_url(url: object, origin: str) -> str:
    """The ``[store] url`` value if it is a PostgreSQL URL; ConfigError naming ``origin``."""
    if not isinstance(url, str):
        raise ConfigError(f"{origin}: expected a string (postgresql://user@host:5432/db)")
    if not is_postgres_url(url) or not urlsplit(url).path.strip("/"):
        raise ConfigError(
            f"{origin}: {mask_url(url)!r} is not a PostgreSQL URL naming a database "
            "(postgresql://user@host:5432/db); leave url out for the embedded SQLite store"
        )
    return url
