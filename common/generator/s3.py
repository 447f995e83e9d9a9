"""The generator's only boto3 code: put objects into a bucket (real S3 or an emulator).

botocore errors become ``AwsAccessError`` naming the bucket/key, at this boundary.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
import botocore.exceptions

from trailwarden.common.errors import AwsAccessError

log = logging.getLogger(__name__)
SOURCE = "generate"


class S3ObjectSink:
    """Writes objects to ``bucket``; creates the bucket when it does not exist yet."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        profile: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        try:
            session = boto3.session.Session(profile_name=profile, region_name=region)
            self._client: Any = session.client("s3", endpoint_url=endpoint_url)
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsAccessError(
                f"cannot open an S3 client: {exc}", source=SOURCE, where=bucket
            ) from exc
        self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise AwsAccessError(
                    f"bucket not usable: {code or exc}", source=SOURCE, where=self.bucket
                ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsAccessError(
                f"S3 unreachable: {exc}", source=SOURCE, where=self.bucket
            ) from exc
        region = self._client.meta.region_name
        arguments: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**arguments)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise AwsAccessError(
                f"cannot create bucket: {exc}", source=SOURCE, where=self.bucket
            ) from exc
        log.info("generate: created bucket %s", self.bucket)

    def put(self, key: str, body: bytes) -> str:
        """Store one object; returns its key."""
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise AwsAccessError(
                f"put failed: {exc}", source=SOURCE, where=f"{self.bucket}/{key}"
            ) from exc
        return key
