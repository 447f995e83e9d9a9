"""Logging setup: one line per event, ``key=value`` fields carried in the messages.

Two formats (``log_format`` in manager.toml's ``[manager]`` and agent.toml's ``[agent]``):
``text`` (the default: ``time level logger: message``) and ``json``, one object a line with
``time`` (RFC 3339 UTC, milliseconds), ``level``, ``logger``, ``message`` and the fields the
message carries: every ``key=value`` in it, ``stage`` (``stage=…``, or a leading ``fetch:``
style word), and the identifiers ``agent_id`` (``agent=``), ``batch`` (``seq=``), ``source``
(``source NAME:``), ``bucket`` and ``key`` (an ``s3://bucket/key`` in the message). Under
systemd (``JOURNAL_STREAM`` naming our stderr) text lines drop the timestamp — journald stamps
every line itself — and start with a ``<N>`` syslog priority so the journal knows the level.

Secrets never reach a log: nothing logs tokens, keys or AWS credentials, and as a second line of
defence a filter masks what is known to be a secret: the value of a credential field
(``aws_secret_access_key = …``, ``"SecretAccessKey": "…"``, ``password: …``, ``token=…``), a
40-character secret key right after an access key ID (``AKIA…:secret``), STS session tokens and
enrollment tokens by their prefixes, and PEM private keys. Nothing else is touched: a
40-character run alone is no secret (S3 keys and bucket names are full of them, and an admin
needs the account and region they carry), so paths stay exactly as they were.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

REDACTED = "[REDACTED]"

CREDENTIAL_FIELDS = (
    r"aws_secret_access_key|secret_access_key|secretaccesskey|secret_key|aws_session_token"
    r"|session_token|sessiontoken|security_token|x-amz-security-token|password|passwd"
    r"|client_secret|secret|token"
)
"""Names whose value is a secret, however written (``Secret_Access_Key``, ``"SessionToken"``)."""

_FIELD_VALUE = re.compile(
    # name, optional closing quote, then = or :, optional opening quote, the value up to the
    # next quote, whitespace, comma or closing bracket.
    rf"(?i)(?P<name>\b(?:{CREDENTIAL_FIELDS})\b[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"',}}\]]+)"
)
_KEY_PAIR = re.compile(
    # An access key ID followed by its secret: AKIA... / ASIA... then a separator then 40 chars.
    r"(?P<name>\b(?:AKIA|ASIA)[A-Z0-9]{16}[\"']?\s*[:,= ]\s*[\"']?)"
    r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_SHAPES = (
    re.compile(r"tw1_[A-Za-z0-9_-]{20,}"),  # enrollment tokens
    re.compile(r"(?:FwoGZXIvYXdzE|IQoJb3JpZ2luX2Vj)[A-Za-z0-9/+=]{20,}"),  # STS session tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
)


def redact(message: str) -> str:
    """``message`` with every known secret replaced by ``[REDACTED]``, the rest unchanged."""
    for pattern in _SHAPES:
        message = pattern.sub(REDACTED, message)
    for pattern in (_FIELD_VALUE, _KEY_PAIR):
        message = pattern.sub(_keep_name, message)
    return message


def _keep_name(match: re.Match[str]) -> str:
    value = match.group("value")
    if value == REDACTED or value.startswith("[REDACTED"):
        return match.group(0)
    return match.group("name") + REDACTED


class RedactSecrets(logging.Filter):
    """Masks known secrets in every record (see the module docstring for what is masked)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        return True


LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_PAIR = re.compile(r"(?<![\w/.-])(?P<name>[a-z][a-z0-9_]*)=(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;]+)")
_STAGE_WORD = re.compile(r"^(?P<stage>[a-z][a-z_-]*): ")
_SOURCE = re.compile(r"\bsource (?P<source>[^\s:]+):")
_S3_OBJECT = re.compile(r"\bs3://(?P<bucket>[^/\s]+)/(?P<key>[^\s,;]+)")
_RENAMED = {"agent": "agent_id", "seq": "batch"}
"""Field names in messages -> their names in JSON lines (identifiers named for what they are)."""
_RESERVED = frozenset(("time", "level", "logger", "message", "exception"))
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}

_SYSLOG_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


def message_fields(message: str) -> dict[str, str]:
    """The fields a log message carries (see the module docstring), by their JSON names."""
    fields: dict[str, str] = {}
    stage = _STAGE_WORD.match(message)
    if stage:
        fields["stage"] = stage.group("stage")
    source = _SOURCE.search(message)
    if source:
        fields["source"] = source.group("source")
    s3 = _S3_OBJECT.search(message)
    if s3:
        fields["bucket"], fields["key"] = s3.group("bucket"), s3.group("key")
    for match in _PAIR.finditer(message):
        name = _RENAMED.get(match.group("name"), match.group("name"))
        if name not in _RESERVED:
            fields[name] = match.group("value").strip("\"'")
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module docstring). Runs after RedactSecrets, so the
    message is already masked; the fields come from that masked message, and an exception's
    traceback is masked here."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        line.update(message_fields(message))
        for name, value in vars(record).items():  # logging's ``extra=`` fields
            if name not in _RECORD_ATTRIBUTES and name not in line:
                line[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class JournalFormatter(logging.Formatter):
    """Text for journald: ``<N>`` priority prefix, no timestamp (the journal adds its own)."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelname, 6)
        return f"<{priority}>{super().format(record)}"


def under_journald(stream: Any = None) -> bool:
    """Our stderr is the journal's stream: systemd sets ``JOURNAL_STREAM=dev:inode`` of it."""
    named = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = named.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        status = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (int(device), int(inode))


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format != "text":
        raise ValueError(f"log_format {log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
    if under_journald():
        return JournalFormatter()
    return logging.Formatter(TEXT_FORMAT, "%Y-%m-%dT%H:%M:%S")


def set_log_format(log_format: str) -> None:
    """Switch the root handlers to ``log_format`` (once the config file is read)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter_for(log_format))


def setup_logging(
    *, debug: bool = False, level: str | None = None, log_format: str = "text"
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if debug else (level or "INFO"))
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug"):
        logging.getLogger(noisy).setLevel("WARNING")
