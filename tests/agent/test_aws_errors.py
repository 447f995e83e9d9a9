"""S3 errors become ours, naming bucket/key and the reason (botocore's Stubber plays S3)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from trailwarden.agent.sources.aws import S3Bucket
from trailwarden.common.errors import AwsAccessError, ObjectError


def stubbed() -> tuple[S3Bucket, Stubber]:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="AKIAX", aws_secret_access_key="x"
    )
    return S3Bucket(client, "trail", "src"), Stubber(client)


@pytest.mark.parametrize(
    ("operation", "code", "status", "error", "words"),
    [
        ("get_object", "AccessDenied", 403, AwsAccessError, "get: access denied"),
        ("get_object", "NoSuchKey", 404, ObjectError, "no longer exists"),
        ("get_object", "NoSuchBucket", 404, AwsAccessError, "bucket 'trail' does not exist"),
        ("list_objects_v2", "AccessDenied", 403, AwsAccessError, "list: access denied"),
        ("list_objects_v2", "SlowDown", 503, AwsAccessError, "list: SlowDown"),
    ],
)
def test_errors_name_bucket_key_and_reason(
    operation: str, code: str, status: int, error: type[Exception], words: str
) -> None:
    bucket, stub = stubbed()
    # SlowDown is retried by botocore first: queue enough answers for every attempt.
    for _ in range(10 if code == "SlowDown" else 1):
        stub.add_client_error(operation, service_error_code=code, http_status_code=status)
    with stub, pytest.raises(error) as caught:
        if operation == "get_object":
            bucket.get("AWSLogs/1/CloudTrail/us-east-1/2026/11/01/k.json.gz")
        else:
            list(bucket.objects("AWSLogs/1/CloudTrail/us-east-1/"))
    message = str(caught.value)
    assert message.startswith("[src] s3://trail/AWSLogs/1/CloudTrail/us-east-1/")
    assert words in message
