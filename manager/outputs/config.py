"""The outputs of manager.toml: the legacy ``[outputs]`` table or ``[[outputs]]`` entries.

TOML cannot hold both forms, so the shape of ``outputs`` decides:

- a **table** (``[outputs]``, what ``manager init`` writes): the alerts-file settings of earlier
  releases (``alerts_file``, ``alerts_file_min_level``, ``alerts_file_max_size``), unchanged;
- an **array of tables** (``[[outputs]]``): one entry per output, ``type = "alerts_file" |
  "webhook" | "slack" | "email"``. The alerts file is on by default as before; an entry of type
  ``alerts_file`` changes its settings (or turns it off with ``enabled = false``).

Each entry's ``name`` is the key of its delivered-cursor in the store. The default is the type
and the entry's position (``webhook-2``), except ``alerts_file`` whose cursor keeps the name
it has always had; moving an entry therefore changes its default name, and an output under a
new name starts at the store's end (it does not replay what the old name had not delivered),
so name an output when the list may be reordered. Errors name the entry and key:
``manager.toml: outputs[2].url: ...``.

Secrets never sit in manager.toml: an e-mail password comes from ``password_file`` (mode 0600),
a ``password`` key is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trailwarden.common.errors import ConfigError, CredentialsError
from trailwarden.common.keyfiles import read_private_file
from trailwarden.common.tomlconfig import Section
from trailwarden.manager.outputs.alerts_file import DEFAULT_MAX_BYTES, OUTPUT_NAME
from trailwarden.manager.store.base import StoredAlert

OUTPUT_TYPES = ("alerts_file", "webhook", "slack", "email")
MAX_LEVEL = 16
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 300.0
DEFAULT_RETRY_INITIAL_SECONDS = 1.0
"""First wait after a failed delivery; it doubles with each failure in a row."""
DEFAULT_RETRY_MAX_SECONDS = 300.0
"""The doubling stops here: a receiver back after an hour's outage waits at most 5 minutes."""
MIN_RETRY_SECONDS = 0.01
MAX_RETRY_SECONDS = 3600.0
DEFAULT_DIGEST_SECONDS = 60.0
"""An e-mail output gathers the alerts of this long into one message (a burst: one digest)."""
MAX_DIGEST_SECONDS = 3600.0
DEFAULT_SMTP_PORT = 587
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ARCHIVES_NAME = "archives"
"""The delivered-cursor name of archives.json."""
RESERVED_NAMES = (OUTPUT_NAME, ARCHIVES_NAME)
"""Cursor names of the alerts file and archives.json: no ``[[outputs]]`` entry may take them."""
_SECRET_KEYS = ("password", "secret", "token", "api_key")
_CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|cookie|signature|password", re.I)
"""Header names that carry credentials: only from ``headers_file``, never manager.toml."""
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class AlertSelection:
    """Which alerts an output gets: at ``min_level`` or above, and (when any is listed) of one of
    the ``rules`` or carrying one of the ``groups``."""

    min_level: int = 0
    rules: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def matches(self, alert: StoredAlert) -> bool:
        if alert.level < self.min_level:
            return False
        if not self.rules and not self.groups:
            return True
        return alert.rule_id in self.rules or any(g in self.groups for g in alert.groups)


@dataclass(frozen=True)
class RetryPolicy:
    """Waits between failed deliveries: ``initial_seconds``, doubling, at most ``max_seconds``
    (applied by the delivery loop, ``Delivery.retry_wait``)."""

    initial_seconds: float = DEFAULT_RETRY_INITIAL_SECONDS
    max_seconds: float = DEFAULT_RETRY_MAX_SECONDS


@dataclass(frozen=True)
class AlertsFileOutput:
    """``type = "alerts_file"`` (or the legacy ``[outputs]`` table): alerts/alerts.json."""

    name: str = OUTPUT_NAME
    enabled: bool = True
    min_level: int = 0
    """Only alerts at this level or above go to the file (Wazuh's ``log_alert_level``)."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Rotate the live file before it grows past this size (it also rotates daily)."""


@dataclass(frozen=True)
class HttpOutput:
    """What the webhook and Slack outputs share: an HTTP receiver and which alerts it gets."""

    name: str
    url: str
    """Where to POST (http or https); '' when ``url_file`` holds it. Only its scheme, host and
    port are ever logged: a Slack incoming-webhook URL is a credential of its own."""
    url_file: str = ""
    """A 0600 file holding the URL instead (read at start), to keep it out of manager.toml."""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ca_file: str = ""
    """PEM CA bundle for an https receiver with a private CA ('' = the system's)."""
    selection: AlertSelection = field(default_factory=AlertSelection)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class WebhookOutput(HttpOutput):
    """``type = "webhook"``: each alert's JSON document POSTed to ``url``."""

    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers that are not credentials; their values are never logged."""
    headers_file: str = ""
    """A 0600 file of ``Name: value`` lines (``Authorization: Bearer ...``), read at start."""


@dataclass(frozen=True)
class SlackOutput(HttpOutput):
    """``type = "slack"``: a Slack incoming webhook (or a compatible one: Mattermost, ...)."""

    console_url: str = ""
    """The web console's base URL (``https://manager.example.org:4752``) for links to alerts."""


@dataclass(frozen=True)
class EmailOutput:
    """``type = "email"``: digests over SMTP, STARTTLS by default."""

    name: str
    host: str
    sender: str
    """``from`` in manager.toml."""
    to: tuple[str, ...]
    port: int = DEFAULT_SMTP_PORT
    username: str = ""
    password_file: str = ""
    """Path (relative to the manager home) of a 0600 file holding the SMTP password."""
    starttls: bool = True
    ca_file: str = ""
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    digest_seconds: float = DEFAULT_DIGEST_SECONDS
    """After the first alert of a burst, wait this long and send everything in one message."""
    console_url: str = ""
    selection: AlertSelection = field(default_factory=AlertSelection)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


OutputConfig = AlertsFileOutput | WebhookOutput | SlackOutput | EmailOutput


def parse_outputs(top: Section) -> tuple[OutputConfig, ...]:
    """``outputs`` of manager.toml in either form; the alerts file is always among them unless
    turned off."""
    raw = top.raw("outputs", {})
    if isinstance(raw, Mapping):
        return _legacy_table(top.section("outputs"))
    if not isinstance(raw, list):
        raise top.error("outputs", "expected a table ([outputs]) or tables ([[outputs]])")
    outputs: list[OutputConfig] = []
    for index, entry in enumerate(raw):
        outputs.append(_entry(Section(entry, top.origin, f"outputs[{index}]"), index))
    names: dict[str, int] = {}
    for index, output in enumerate(outputs):
        if output.name in names:
            raise ConfigError(
                f"{top.origin}: outputs[{index}].name: {output.name!r} is already the name of "
                f"outputs[{names[output.name]}] (names key the delivered-cursors: one each)"
            )
        names[output.name] = index
    if not any(isinstance(o, AlertsFileOutput) for o in outputs):
        outputs.insert(0, AlertsFileOutput())
    return tuple(o for o in outputs if not (isinstance(o, AlertsFileOutput) and not o.enabled))


def _legacy_table(section: Section) -> tuple[OutputConfig, ...]:
    enabled = section.bool("alerts_file", True)
    min_level = section.int("alerts_file_min_level", 0, minimum=0, maximum=MAX_LEVEL)
    max_bytes = section.size("alerts_file_max_size", DEFAULT_MAX_BYTES)
    if max_bytes < 1:
        raise section.error("alerts_file_max_size", "must be at least 1 byte")
    section.done()
    if not enabled:
        return ()
    return (AlertsFileOutput(min_level=min_level, max_bytes=max_bytes),)


def _entry(section: Section, index: int) -> OutputConfig:
    kind = section.str("type", "")
    if kind not in OUTPUT_TYPES:
        raise section.error("type", f"expected one of {', '.join(OUTPUT_TYPES)}, got {kind!r}")
    for key in _SECRET_KEYS:
        if key in section.data:
            raise section.error(
                key,
                "secrets are not kept in manager.toml: put it in a file of mode 0600 and name "
                "that file (password_file, headers_file or url_file)",
            )
    default_name = OUTPUT_NAME if kind == "alerts_file" else f"{kind}-{index}"
    name = section.str("name", default_name)
    if not _NAME.match(name):
        raise section.error("name", f"use 1-64 letters, digits, '_', '.' or '-', got {name!r}")
    if name in RESERVED_NAMES and not (kind == "alerts_file" and name == OUTPUT_NAME):
        raise section.error(
            "name", f"{name!r} is the cursor of the {name.replace('_', ' ')}: choose another"
        )
    output: OutputConfig
    if kind == "alerts_file":
        output = _alerts_file(section, name)
    elif kind in ("webhook", "slack"):
        url, url_file = _url(section)
        common: dict[str, Any] = {
            "name": name,
            "url": url,
            "url_file": url_file,
            "timeout_seconds": _timeout(section),
            "ca_file": section.str("ca_file", ""),
            "selection": _selection(section),
            "retry": _retry(section),
        }
        if kind == "webhook":
            output = WebhookOutput(
                headers=_headers(section),
                headers_file=section.str("headers_file", ""),
                **common,
            )
        else:
            output = SlackOutput(console_url=_console_url(section), **common)
    else:
        output = _email(section, name)
    section.done()
    return output


def _alerts_file(section: Section, name: str) -> AlertsFileOutput:
    max_bytes = section.size("max_size", DEFAULT_MAX_BYTES)
    if max_bytes < 1:
        raise section.error("max_size", "must be at least 1 byte")
    return AlertsFileOutput(
        name=name,
        enabled=section.bool("enabled", True),
        min_level=section.int("min_level", 0, minimum=0, maximum=MAX_LEVEL),
        max_bytes=max_bytes,
    )


def _email(section: Section, name: str) -> EmailOutput:
    host = section.str("host", "")
    if not host:
        raise section.error("host", "required: the SMTP server's host name")
    sender = section.str("from", "")
    if "@" not in sender:
        raise section.error("from", f"expected an e-mail address, got {sender!r}")
    to = section.str_list("to")
    if not to or not all("@" in a for a in to):
        raise section.error("to", "expected a non-empty list of e-mail addresses")
    username = section.str("username", "")
    password_file = section.str("password_file", "")
    if bool(username) != bool(password_file):
        raise section.error(
            "password_file" if username else "username", "give username and password_file together"
        )
    starttls = section.bool("starttls", True)
    if username and not starttls:
        raise section.error(
            "starttls", "credentials are never sent over a connection without TLS: keep it true"
        )
    return EmailOutput(
        name=name,
        host=host,
        sender=sender,
        to=to,
        port=section.int("port", DEFAULT_SMTP_PORT, minimum=1, maximum=65535),
        username=username,
        password_file=password_file,
        starttls=starttls,
        ca_file=section.str("ca_file", ""),
        timeout_seconds=_timeout(section),
        digest_seconds=_seconds(
            section, "digest_seconds", DEFAULT_DIGEST_SECONDS, 0.0, MAX_DIGEST_SECONDS
        ),
        console_url=_console_url(section),
        selection=_selection(section),
        retry=_retry(section),
    )


def _selection(section: Section) -> AlertSelection:
    return AlertSelection(
        min_level=section.int("min_level", 0, minimum=0, maximum=MAX_LEVEL),
        rules=section.str_list("rules"),
        groups=section.str_list("groups"),
    )


def _retry(section: Section) -> RetryPolicy:
    initial = _seconds(
        section,
        "retry_initial_seconds",
        DEFAULT_RETRY_INITIAL_SECONDS,
        MIN_RETRY_SECONDS,
        MAX_RETRY_SECONDS,
    )
    cap = _seconds(
        section,
        "retry_max_seconds",
        DEFAULT_RETRY_MAX_SECONDS,
        MIN_RETRY_SECONDS,
        MAX_RETRY_SECONDS,
    )
    if cap < initial:
        raise section.error(
            "retry_max_seconds",
            f"must be at least retry_initial_seconds ({initial:g}), got {cap:g}",
        )
    return RetryPolicy(initial, cap)


def _timeout(section: Section) -> float:
    return _seconds(section, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS, 0.1, MAX_TIMEOUT_SECONDS)


def _seconds(section: Section, key: str, default: float, low: float, high: float) -> float:
    value = section.raw(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise section.error(key, f"expected a number of seconds, got {value!r}")
    if not low <= value <= high:
        raise section.error(key, f"must be between {low:g} and {high:g} seconds, got {value:g}")
    return float(value)


def url_problem(url: str) -> str:
    """What makes ``url`` unusable for a receiver ('' when it is an http or https URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL with a host, got scheme {parts.scheme!r}"
    try:
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError:
        return "the port is not a number between 0 and 65535"
    return ""


def _url(section: Section) -> tuple[str, str]:
    """``(url, url_file)``: one of them, the URL checked (the file's is checked when read)."""
    url = section.str("url", "")
    url_file = section.str("url_file", "")
    if url and url_file:
        raise section.error("url_file", "give url or url_file, not both")
    if url_file:
        return "", url_file
    problem = url_problem(url)
    if problem:
        raise section.error("url", problem)
    return url, ""


def _console_url(section: Section) -> str:
    url = section.str("console_url", "")
    if url and urlsplit(url).scheme != "https":
        raise section.error("console_url", "expected the console's https:// address")
    return url.rstrip("/")


def _headers(section: Section) -> tuple[tuple[str, str], ...]:
    raw: Any = section.raw("headers", {})
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise section.error("headers", "expected a table of header names to string values")
    for name in raw:
        if not _HEADER_NAME.match(name) or name.lower() in ("content-type", "host"):
            raise section.error("headers", f"header {name!r} cannot be set")
        if _CREDENTIAL_HEADER.search(name):
            raise section.error(
                "headers",
                f"header {name!r} looks like a credential: put it in headers_file (mode 0600), "
                "not in manager.toml",
            )
    for name, value in raw.items():
        if "\r" in value or "\n" in value:
            raise section.error("headers", f"header {name!r}: line breaks are not allowed")
    return tuple(sorted(raw.items()))


def read_secret_file(home: Path, path: str, where: str) -> str:
    """The text of a 0600 secret file (``password_file``, ``url_file``, ``headers_file``);
    ConfigError naming ``where`` (``output NAME: KEY``) when it is missing or others can read
    it. The content is never put in an error."""
    resolved = resolve_path(home, path)
    try:
        return read_private_file(resolved).decode()
    except (CredentialsError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def parse_header_lines(text: str, where: str) -> tuple[tuple[str, str], ...]:
    """``Name: value`` lines of a headers_file (blank lines and ``#`` comments skipped)."""
    headers = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _HEADER_NAME.match(name) or name.lower() in ("content-type", "host"):
            raise ConfigError(f"{where}: line {number}: expected 'Name: value' with a usable name")
        headers.append((name, value.strip()))
    return tuple(headers)


def resolve_path(home: Path, path: str) -> Path:
    """A path of manager.toml: relative to the manager home unless absolute."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else home / candidate


@dataclass(frozen=True)
class ArchivesConfig:
    """``[archives]``: every analysed event, alert or not, to alerts/archives.json (Wazuh's
    ``logall_json``), fed from the store's event archive (which it turns on)."""

    enabled: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    """Rotate the live file before it grows past this size (it also rotates daily)."""
    compress: bool = True
    """gzip each rotated file (``archives-26.json.gz``), as Wazuh does with its archives."""


def parse_archives(top: Section) -> ArchivesConfig:
    section = top.section("archives")
    enabled = section.bool("enabled", False)
    max_bytes = section.size("max_size", DEFAULT_MAX_BYTES)
    if max_bytes < 1:
        raise section.error("max_size", "must be at least 1 byte")
    compress = section.bool("compress", True)
    section.done()
    return ArchivesConfig(enabled=enabled, max_bytes=max_bytes, compress=compress)
