"""The log redactor masks known secrets and nothing else: S3 paths keep account and region."""

from __future__ import annotations

import io
import logging

import pytest

from trailwarden.common.logs import RedactSecrets, redact

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters, AWS's documented example

PATHS = [
    "stage=fetch where=s3://org-cloudtrail-123456789012-us-west-1/AWSLogs/123456789012/CloudTrail/"
    "us-west-1/2026/11/20/123456789012_CloudTrail_us-west-1_20261120T0915Z_AbCdEfGhIjKlMnOp.json.gz",
    "bucket=org-cloudtrail-logs-archive-2026-eu-central-1a key=AWSLogs/o-abcdef1234/123456789012/",
    "digest AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/20/abcdefABCDEF0123456789+/=",
    "record eventID=4f2c8f9e-1234-4abc-9def-0123456789ab "
    "requestID=ABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890123",
    "token count=3 and 2 tokens; tokenizer ok; session_token_id=42",
]


@pytest.mark.parametrize("line", PATHS)
def test_paths_and_ids_are_kept_exactly(line: str) -> None:
    assert redact(line) == line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"aws_secret_access_key = {SECRET}", "aws_secret_access_key = [REDACTED]"),
        (f'{{"SecretAccessKey": "{SECRET}", "x": 1}}', '{"SecretAccessKey": "[REDACTED]", "x": 1}'),
        (f"AKIAIOSFODNN7EXAMPLE:{SECRET} end", "AKIAIOSFODNN7EXAMPLE:[REDACTED] end"),
        ("aws_session_token=IQoJb3JpZ2luX2VjEJr//////////wEaCXVz", "aws_session_token=[REDACTED]"),
        ("got FwoGZXIvYXdzEBAaDGFiY2RlZmdoaWprbA then", "got [REDACTED] then"),
        ("enroll --token tw1_abcdefghijklmnopqrstuvwxyz0123", "enroll --token [REDACTED]"),
        ("password: hunter2, user=bob", "password: [REDACTED], user=bob"),
        ("Password='s3cr3t!' next", "Password='[REDACTED]' next"),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----",
            "[REDACTED]",
        ),
    ],
)
def test_known_secrets_are_masked(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_the_logging_filter_applies_it_to_formatted_messages() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "stage=fetch where=%s secret_access_key=%s", PATHS[0].split("=", 2)[2], SECRET
        )
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert "secret_access_key=[REDACTED]" in text
    assert (
        "org-cloudtrail-123456789012-us-west-1/AWSLogs/123456789012/CloudTrail/us-west-1/" in text
    )
