"""Group records into log files and name them the way CloudTrail does in S3.

``[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/
<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 random chars>.json.gz`` — one file per
account, region and five-minute window, named after its delivery time (the window's end).
Digest files go under ``CloudTrail-Digest/`` beside them; collectors must skip them.
"""

from __future__ import annotations

import gzip
import json
import random
import string
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trailwarden.common.generator.generate import WINDOW_SECONDS
from trailwarden.common.logfile import gzip_records

_NAME_CHARS = string.ascii_letters + string.digits
TRAIL_NAME = "organization-trail"


@dataclass(frozen=True, slots=True)
class LogObject:
    """One object to write: its key (without bucket) and gzipped body."""

    key: str
    body: bytes
    records: int
    """How many records it holds (0 for a digest)."""


def prefix_path(prefix: str, organization_id: str | None) -> str:
    """``[prefix/]AWSLogs/[org/]`` with exactly one slash between parts."""
    head = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    org = f"{organization_id}/" if organization_id else ""
    return f"{head}AWSLogs/{org}"


def log_key(
    base: str, account: str, region: str, delivered: datetime, suffix: str, kind: str = "CloudTrail"
) -> str:
    """The key of one log file; ``base`` comes from ``prefix_path``."""
    day = delivered.strftime("%Y/%m/%d")
    stamp = delivered.strftime("%Y%m%dT%H%MZ")
    return (
        f"{base}{account}/{kind}/{region}/{day}/{account}_{kind}_{region}_{stamp}_{suffix}.json.gz"
    )


def plan_objects(
    records: Sequence[dict[str, Any]],
    *,
    prefix: str = "",
    organization_id: str | None = None,
    seed: int = 0,
    digest: bool = False,
    bucket: str = "trailwarden-demo-trail",
) -> list[LogObject]:
    """Log objects for ``records`` (grouped by recipient account, region, window)."""
    if organization_id is not None and not organization_id.startswith("o-"):
        raise ValueError(f"not an organization ID (o-...): {organization_id!r}")
    rng = random.Random(f"{seed}:layout")
    base = prefix_path(prefix, organization_id)
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        moment = _event_time(record)
        window = int(moment.timestamp()) // WINDOW_SECONDS
        groups[(str(record["recipientAccountId"]), str(record["awsRegion"]), window)].append(record)
    objects: list[LogObject] = []
    delivered_by_stream: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for (account, region, window), members in sorted(groups.items()):
        delivered = datetime.fromtimestamp((window + 1) * WINDOW_SECONDS, UTC)
        suffix = "".join(rng.choice(_NAME_CHARS) for _ in range(16))
        key = log_key(base, account, region, delivered, suffix)
        objects.append(LogObject(key, gzip_records(members), len(members)))
        delivered_by_stream[(account, region)].append((delivered, key))
    if digest:
        for (account, region), files in sorted(delivered_by_stream.items()):
            objects.append(_digest(base, bucket, account, region, files))
    return objects


def _digest(
    base: str, bucket: str, account: str, region: str, files: list[tuple[datetime, str]]
) -> LogObject:
    """A CloudTrail-Digest file listing the stream's log files (unsigned: for skipping tests)."""
    end = max(moment for moment, _ in files) + timedelta(minutes=1)
    begin = min(moment for moment, _ in files) - timedelta(seconds=WINDOW_SECONDS)
    stamp = end.strftime("%Y%m%dT%H%M%SZ")
    key = (
        f"{base}{account}/CloudTrail-Digest/{region}/{end.strftime('%Y/%m/%d')}/"
        f"{account}_CloudTrail-Digest_{region}_{TRAIL_NAME}_{region}_{stamp}.json.gz"
    )
    body = {
        "awsAccountId": account,
        "digestStartTime": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "digestEndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "digestS3Bucket": bucket,
        "digestS3Object": key,
        "digestPublicKeyFingerprint": "",
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "oldestEventTime": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "previousDigestS3Bucket": None,
        "previousDigestS3Object": None,
        "previousDigestHashValue": None,
        "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [
            {"s3Bucket": bucket, "s3Object": file_key, "hashValue": "", "hashAlgorithm": "SHA-256"}
            for _, file_key in files
        ],
    }
    return LogObject(key, gzip.compress(json.dumps(body).encode(), mtime=0), 0)


def _event_time(record: dict[str, Any]) -> datetime:
    return datetime.strptime(str(record["eventTime"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
