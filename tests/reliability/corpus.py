"""The bad-input corpus: malformed S3 objects, generated in code (no binary blobs in git).

Each :class:`BadObject` builds an object body and says what TrailWarden must do with it:

``refused``          the object is counted failed with a reason naming bucket/key; nothing in
                     it is forwarded (it cannot be read as CloudTrail at all)
``records skipped``  the object is read; its broken records are reported (index or line) and
                     skipped, the good records in it are forwarded
``delivered``        strange but valid: every record in it is forwarded byte for byte
``empty``            readable and holds no records: counted done, nothing forwarded

Good records carry fresh eventIDs; ``good_ids`` lists those that must reach the spool.
``docs/RELIABILITY.md`` lists this corpus (see ``reliability_doc.py``).
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REFUSED = "refused"
RECORDS_SKIPPED = "records skipped"
DELIVERED = "delivered"
EMPTY = "empty"

BOMB_LIMIT = 96 * 1024**2
"""The corpus test lowers the agent's inflate guard (128 MiB) to this: above the 70 MB record,
below the 192 MB bomb."""


def record(**fields: Any) -> dict[str, Any]:
    """A CloudTrail-shaped record with a fresh eventID (``fields`` override)."""
    out: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": str(uuid.uuid4()),
        "eventTime": "2026-11-01T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice"},
    }
    out.update(fields)
    return out


def envelope(records: list[Any]) -> bytes:
    return json.dumps({"Records": records}).encode()


@dataclass(frozen=True)
class Built:
    body: bytes
    good_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BadObject:
    kind: str
    description: str
    outcome: str
    build: Callable[[], Built]
    file_name: str = ""
    """Replaces the usual ``<acct>_CloudTrail_<region>_<stamp>_<id>.json.gz`` name."""


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, 1)


def _good_envelope(count: int = 2) -> tuple[bytes, list[str]]:
    records = [record() for _ in range(count)]
    return envelope(records), [r["eventID"] for r in records]


def _truncated_gzip() -> Built:
    body, _ = _good_envelope(50)
    data = _gz(body)
    return Built(data[: len(data) // 2])


def _corrupt_gzip() -> Built:
    body, _ = _good_envelope()
    data = bytearray(_gz(body))
    data[12:40] = b"\x00" * 28  # magic intact, deflate stream wrecked
    return Built(bytes(data))


def _bomb() -> Built:
    # 192 MB of zeros inside a Records envelope: ~190 KB compressed.
    inner = b'{"Records":[{"eventID":"' + b"0" * (2 * BOMB_LIMIT) + b'"}]}'
    return Built(gzip.compress(inner, 9))


def _lines(*parts: bytes) -> bytes:
    return b"\n".join(parts)


def _nan_lines() -> Built:
    a, b = record(), record()
    return Built(
        _lines(json.dumps(a).encode(), b'{"eventID":"x","bytes":NaN}', json.dumps(b).encode()),
        [a["eventID"], b["eventID"]],
    )


def _infinity_lines() -> Built:
    a = record()
    return Built(
        _lines(b'{"eventID":"y","bytes":-Infinity}', json.dumps(a).encode()), [a["eventID"]]
    )


def _one_bad_line() -> Built:
    a, b = record(), record()
    return Built(
        _lines(json.dumps(a).encode(), b'{"eventID": "z", "eventName": ', json.dumps(b).encode()),
        [a["eventID"], b["eventID"]],
    )


def _deep_first_line() -> Built:
    a = record()
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    return Built(_lines(deep, json.dumps(a).encode()), [a["eventID"]])


def _non_object_records() -> Built:
    a = record()
    return Built(envelope([1, "text", None, [a], a]), [a["eventID"]])


def _between_good(bad: bytes) -> Built:
    """``{"Records": [good, bad, good]}`` gzipped: the bad record alone must be refused."""
    a, b = record(), record()
    body = b'{"Records":[' + json.dumps(a).encode() + b"," + bad + b","
    return Built(_gz(body + json.dumps(b).encode() + b"]}"), [a["eventID"], b["eventID"]])


def _delivered(*records: dict[str, Any]) -> Built:
    return Built(_gz(envelope(list(records))), [r["eventID"] for r in records])


def _big_record() -> Built:
    return _delivered(record(requestParameters={"policy": "x" * (10 * 1024**2)}), record())


def _record_past_the_link_limit() -> Built:
    # One record bigger than a gRPC message may be: it can never reach the manager, and sent
    # anyway it broke every link session, so nothing from the agent was acknowledged again.
    big, small = record(requestParameters={"policy": "x" * (70 * 1024**2)}), record()
    return Built(_gz(envelope([big, small])), [small["eventID"]])


def _huge_json_key() -> Built:
    return _delivered(record(**{"k" * (1024**2): "v"}))


def _duplicate_keys() -> Built:
    a = record()
    text = json.dumps(a)[:-1] + ', "eventName": "PutObject", "eventName": "DeleteObject"}'
    return Built(_gz(b'{"Records":[' + text.encode() + b"]}"), [a["eventID"]])


def _two_member_gzip() -> Built:
    # Two gzip members whose concatenation is one JSON lines text.
    a, b = record(), record()
    return Built(
        _gz(json.dumps(a).encode() + b"\n") + _gz(json.dumps(b).encode() + b"\n"),
        [a["eventID"], b["eventID"]],
    )


def _control_characters() -> Built:
    return _delivered(record(userAgent="curl\u0000\u0007\u001b[31m", eventName="Get\u2028Object"))


CORPUS: tuple[BadObject, ...] = (
    BadObject("truncated-gzip", "gzip cut in half (upload interrupted)", REFUSED, _truncated_gzip),
    BadObject("corrupt-gzip", "gzip magic, wrecked deflate stream", REFUSED, _corrupt_gzip),
    BadObject(
        "not-gzip-binary",
        "named .json.gz, holds random binary",
        REFUSED,
        lambda: Built(os.urandom(4096).replace(b"\x1f\x8b", b"xx")),
    ),
    BadObject(
        "gzip-bomb",
        "192 MB of zeros in 190 KB of gzip (past the inflate guard, lowered to 96 MB here)",
        REFUSED,
        _bomb,
    ),
    BadObject(
        "double-gzip",
        "gzip of a gzip",
        REFUSED,
        lambda: Built(_gz(_gz(_good_envelope()[0]))),
    ),
    BadObject(
        "utf8-bom",
        "UTF-8 byte order mark before the JSON",
        REFUSED,
        lambda: Built(b"\xef\xbb\xbf" + _good_envelope()[0]),
    ),
    BadObject("json-number", "the whole file is the JSON number 42", REFUSED, lambda: Built(b"42")),
    BadObject("json-null", "the whole file is null", REFUSED, lambda: Built(_gz(b"null"))),
    BadObject(
        "json-string", "the whole file is a JSON string", REFUSED, lambda: Built(b'"Records"')
    ),
    BadObject(
        "records-object",
        "'Records' is an object, not a list",
        REFUSED,
        lambda: Built(_gz(b'{"Records":{"eventID":"a"}}')),
    ),
    BadObject(
        "records-null", "'Records' is null", REFUSED, lambda: Built(_gz(b'{"Records":null}'))
    ),
    BadObject(
        "truncated-json",
        "valid gzip of a JSON document cut off mid-record",
        REFUSED,
        lambda: Built(_gz(_good_envelope(5)[0][:-40])),
    ),
    BadObject(
        "trailing-garbage",
        "a Records document followed by junk on the same line",
        REFUSED,
        lambda: Built(_gz(_good_envelope()[0] + b" trailing junk")),
    ),
    BadObject(
        "plain-text",
        "a text log, not JSON",
        REFUSED,
        lambda: Built(_gz(b"2026-11-01 10:00:00 GET /index.html 200\nanother line\n")),
    ),
    BadObject(
        "digest-in-log-path",
        "a CloudTrail digest file named like a log file in the log folder",
        REFUSED,
        lambda: Built(
            _gz(
                json.dumps(
                    {
                        "awsAccountId": "111122223333",
                        "digestStartTime": "2026-11-01T09:00:00Z",
                        "digestEndTime": "2026-11-01T10:00:00Z",
                        "digestS3Bucket": "trail",
                        "logFiles": [],
                    }
                ).encode()
            )
        ),
        file_name="111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20261101T1000Z.json.gz",
    ),
    BadObject(
        "non-cloudtrail-json",
        "an AWS Config snapshot (JSON object, no Records, no event fields)",
        REFUSED,
        lambda: Built(
            _gz(json.dumps({"fileVersion": "1.0", "configurationItems": [{"a": 1}]}).encode())
        ),
    ),
    BadObject(
        "invalid-utf8",
        "one record of a Records document holds bytes that are not UTF-8, between good ones",
        RECORDS_SKIPPED,
        lambda: _between_good(b'{"eventID":"\xff\xfe\xc3"}'),
    ),
    BadObject(
        "nan-in-records",
        "one record of a Records document holds NaN (not JSON), between good ones",
        RECORDS_SKIPPED,
        lambda: _between_good(b'{"eventID":"n","bytes":NaN}'),
    ),
    BadObject(
        "huge-integer",
        "one record holds a 5,000-digit integer (past Python's int parsing limit)",
        RECORDS_SKIPPED,
        lambda: _between_good(b'{"eventID":"i","n":' + b"7" * 5000 + b"}"),
    ),
    BadObject(
        "deep-nesting",
        "one record nested 50,000 levels deep inside Records, between good ones",
        RECORDS_SKIPPED,
        lambda: _between_good(b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ),
    BadObject(
        "deep-array-record",
        "10,000 levels of nested arrays as one element of Records",
        RECORDS_SKIPPED,
        lambda: _between_good(b"[" * 10_000 + b"]" * 10_000),
    ),
    BadObject("nan-json-lines", "JSON lines, one line holds NaN", RECORDS_SKIPPED, _nan_lines),
    BadObject(
        "infinity-json-lines",
        "JSON lines, one line holds -Infinity",
        RECORDS_SKIPPED,
        _infinity_lines,
    ),
    BadObject("broken-json-line", "JSON lines, one line cut off", RECORDS_SKIPPED, _one_bad_line),
    BadObject(
        "deep-json-line",
        "JSON lines, first line nested 10,000 levels deep",
        RECORDS_SKIPPED,
        _deep_first_line,
    ),
    BadObject(
        "non-object-records",
        "Records holding a number, a string, null and a list beside a good record",
        RECORDS_SKIPPED,
        _non_object_records,
    ),
    BadObject("empty-file", "zero bytes", EMPTY, lambda: Built(b"")),
    BadObject("empty-gzip", "gzip of nothing", EMPTY, lambda: Built(_gz(b""))),
    BadObject("empty-records", '{"Records": []}', EMPTY, lambda: Built(_gz(b'{"Records": []}'))),
    BadObject("record-10mb", "one 10 MB record beside a small one", DELIVERED, _big_record),
    BadObject(
        "record-70mb",
        "one 70 MB record (past the link's 64 MB message limit) beside a small one",
        RECORDS_SKIPPED,
        _record_past_the_link_limit,
    ),
    BadObject("huge-json-key", "a record with a 1 MB field name", DELIVERED, _huge_json_key),
    BadObject(
        "duplicate-keys",
        "a record with eventName given three times",
        DELIVERED,
        _duplicate_keys,
    ),
    BadObject(
        "gzip-members",
        "two concatenated gzip members (JSON lines)",
        DELIVERED,
        _two_member_gzip,
    ),
    BadObject(
        "control-characters",
        "NUL, BEL, ANSI escapes and U+2028 inside strings",
        DELIVERED,
        _control_characters,
    ),
    BadObject(
        "huge-s3-key",
        "an S3 key near S3's 1,024-byte limit",
        DELIVERED,
        lambda: _delivered(record()),
        file_name="111122223333_CloudTrail_us-east-1_20261101T1000Z_" + "k" * 900 + ".json.gz",
    ),
)
