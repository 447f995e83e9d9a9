"""Write generated log objects to a directory or to ``s3://bucket[/prefix]``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from trailwarden.common.generator.layout import plan_objects

log = logging.getLogger(__name__)


class ObjectSink(Protocol):
    """Where log objects go; ``put`` returns what was written (key or path)."""

    def put(self, key: str, body: bytes) -> str: ...


class DirectorySink:
    """Objects as files under ``root``, the key's folders as directories."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, body: bytes) -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return str(path)


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix``); ValueError if malformed."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    return bucket, prefix.strip("/")


def write_objects(
    records: Sequence[dict[str, Any]],
    out: str | Path,
    *,
    organization_id: str | None = None,
    seed: int = 0,
    digest: bool = False,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
) -> list[str]:
    """Write ``records`` as CloudTrail log objects; returns the keys (S3) or paths written.

    ``out`` is a directory or ``s3://bucket[/prefix]``; for S3, ``endpoint_url`` (an emulator),
    ``profile`` and ``region`` choose where, and a missing bucket is created.
    """
    sink: ObjectSink
    prefix = ""
    bucket = "local"
    if str(out).startswith("s3://"):
        from trailwarden.common.generator.s3 import S3ObjectSink  # boto3 only when needed

        bucket, prefix = split_s3_url(str(out))
        sink = S3ObjectSink(bucket, endpoint_url=endpoint_url, profile=profile, region=region)
    else:
        sink = DirectorySink(Path(out))
    objects = plan_objects(
        records,
        prefix=prefix,
        organization_id=organization_id,
        seed=seed,
        digest=digest,
        bucket=bucket,
    )
    written = [sink.put(item.key, item.body) for item in objects]
    log.info("generate: wrote %d objects (%d records) to %s", len(written), len(records), out)
    return written
