"""Logging setup: one line per event, ``key=value`` fields carried in the messages.

Secrets never reach a log: nothing logs tokens, keys or AWS credentials, and as a second line of
defence a filter masks what is known to be a secret: the value of a credential field
(``aws_secret_access_key = …``, ``"SecretAccessKey": "…"``, ``password: …``, ``token=…``), a
40-character secret key right after an access key ID (``AKIA…:secret``), STS session tokens and
enrollment tokens by their prefixes, and PEM private keys. Nothing else is touched: a
40-character run alone is no secret (S3 keys and bucket names are full of them, and an admin
needs the account and region they carry), so paths stay exactly as they were.
"""

from __future__ import annotations

import logging
import re
import sys

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


def setup_logging(*, debug: bool = False, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if debug else (level or "INFO"))
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug"):
        logging.getLogger(noisy).setLevel("WARNING")
