"""What an SQS message body says: which CloudTrail log objects were written.

Four shapes reach a trail's queue, and any of them may come wrapped in an SNS envelope
(``{"Type": "Notification", "Message": "<the inner JSON as a string>"}``) when the queue is
subscribed to a topic without raw delivery:

* S3 event notifications: ``{"Records": [{"eventSource": "aws:s3", "eventName":
  "ObjectCreated:Put", "s3": {"bucket": {"name"}, "object": {"key", "size"}}}]}``, keys
  URL-encoded (``+`` for a space);
* S3's ``s3:TestEvent``, sent when a notification configuration is saved: nothing to collect;
* EventBridge "Object Created" events: ``{"source": "aws.s3", "detail-type": "Object Created",
  "detail": {"bucket": {"name"}, "object": {"key", "size"}}}``, keys as they are;
* CloudTrail's own SNS notification: ``{"s3Bucket": "...", "s3ObjectKey": ["...", ...]}``.

Keys that are not CloudTrail log files (digests, Insights, other writers sharing the bucket)
and events that are not object creations are *ignored*: counted, not errors. A body that is none
of these is malformed: ObjectError naming the message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from trailwarden.common.errors import ObjectError

CLOUDTRAIL_KEY = re.compile(
    r"(?:^|/)AWSLogs/(?:[^/]+/)*?(?P<account>\d{12})/CloudTrail/"
    r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)/\d{4}/\d{2}/\d{2}/[^/]+\.json(?:\.gz)?$"
)
"""A CloudTrail log file (organization trails and prefixes included); not digests (under
``CloudTrail-Digest/``) nor Insights (``CloudTrail-Insight/``)."""
MAX_OBJECTS_PER_MESSAGE = 1000
"""More named objects than this in one message is not a notification (CloudTrail names a few)."""


@dataclass(frozen=True, slots=True)
class LogObject:
    """A CloudTrail log file named by a notification."""

    bucket: str
    key: str
    size: int
    """Bytes, when the notification says (S3 and EventBridge do, CloudTrail does not): 0."""
    account_id: str
    region: str


@dataclass(frozen=True, slots=True)
class Notification:
    """What one message asks the agent to collect."""

    objects: tuple[LogObject, ...]
    ignored: tuple[str, ...] = ()
    """What was passed over and why (``s3://bucket/key: not a CloudTrail log file``)."""
    test_event: bool = False


def read_notification(body: str, message_id: str) -> Notification:
    """Parse one message body; ObjectError when it is not a notification we understand."""
    where = f"message {message_id}"
    document = _json(body, where)
    if isinstance(document, dict) and document.get("Type") in (
        "Notification",
        "SubscriptionConfirmation",
    ):
        if document.get("Type") == "SubscriptionConfirmation":
            return Notification((), ("SNS subscription confirmation",))
        inner = document.get("Message")
        if not isinstance(inner, str):
            raise ObjectError("SNS envelope without a Message string", where=where)
        document = _json(inner, f"{where} (SNS Message)")
    if not isinstance(document, dict):
        raise ObjectError(f"expected a JSON object, got {type(document).__name__}", where=where)
    if document.get("Event") == "s3:TestEvent":
        return Notification((), ("s3:TestEvent",), test_event=True)
    if "Records" in document:
        return _s3_event(document["Records"], where)
    if document.get("source") == "aws.s3" and "detail" in document:
        return _eventbridge(document, where)
    if "s3ObjectKey" in document:
        return _cloudtrail(document, where)
    raise ObjectError(
        "not an S3, EventBridge or CloudTrail notification (keys: "
        + ", ".join(sorted(str(k) for k in document)[:8])
        + ")",
        where=where,
    )


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ObjectError(f"body is not JSON: {exc}", where=where) from None


def _s3_event(records: Any, where: str) -> Notification:
    if not isinstance(records, list):
        raise ObjectError("Records is not a list", where=where)
    _check_count(len(records), where)
    objects: list[LogObject] = []
    ignored: list[str] = []
    for index, record in enumerate(records):
        at = f"{where} Records[{index}]"
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise ObjectError("not an S3 event record (eventSource is not aws:s3)", where=at)
        name = str(record.get("eventName", ""))
        s3 = record.get("s3")
        bucket, key, size = _bucket_key(s3, at, encoded=True)
        if not name.startswith("ObjectCreated:"):
            ignored.append(f"s3://{bucket}/{key}: {name or 'event'} is not an object creation")
            continue
        _add(objects, ignored, bucket, key, size)
    return Notification(tuple(objects), tuple(ignored))


def _eventbridge(document: dict[str, Any], where: str) -> Notification:
    kind = str(document.get("detail-type", ""))
    bucket, key, size = _bucket_key(document.get("detail"), where, encoded=False)
    if kind != "Object Created":
        return Notification((), (f"s3://{bucket}/{key}: EventBridge {kind!r} is not a creation",))
    objects: list[LogObject] = []
    ignored: list[str] = []
    _add(objects, ignored, bucket, key, size)
    return Notification(tuple(objects), tuple(ignored))


def _cloudtrail(document: dict[str, Any], where: str) -> Notification:
    bucket = document.get("s3Bucket")
    keys = document.get("s3ObjectKey")
    if not isinstance(bucket, str) or not bucket:
        raise ObjectError("CloudTrail notification without s3Bucket", where=where)
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise ObjectError("CloudTrail notification: s3ObjectKey is not a list of keys", where=where)
    _check_count(len(keys), where)
    objects: list[LogObject] = []
    ignored: list[str] = []
    for key in keys:
        _add(objects, ignored, bucket, key, 0)
    return Notification(tuple(objects), tuple(ignored))


def _bucket_key(part: Any, where: str, *, encoded: bool) -> tuple[str, str, int]:
    if not isinstance(part, dict):
        raise ObjectError("no bucket/object in the event", where=where)
    bucket = part.get("bucket")
    obj = part.get("object")
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = obj.get("key") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
        raise ObjectError("event without bucket.name and object.key", where=where)
    size = obj.get("size", 0) if isinstance(obj, dict) else 0
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        size = 0
    return name, unquote_plus(key) if encoded else key, size


def _add(objects: list[LogObject], ignored: list[str], bucket: str, key: str, size: int) -> None:
    match = CLOUDTRAIL_KEY.search(key)
    if match is None:
        ignored.append(f"s3://{bucket}/{key}: not a CloudTrail log file")
        return
    objects.append(LogObject(bucket, key, size, match.group("account"), match.group("region")))


def _check_count(count: int, where: str) -> None:
    if count > MAX_OBJECTS_PER_MESSAGE:
        raise ObjectError(
            f"names {count} objects (more than {MAX_OBJECTS_PER_MESSAGE}): not a notification",
            where=where,
        )
