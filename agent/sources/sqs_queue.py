"""The SQS half of the AWS SDK adapter: receive, delete and extend messages, errors translated.

Beside ``aws.py`` (sessions, roles, S3) and built on its sessions, so an SQS source uses the
same credential options, the same lean model loader (the SQS model without its documentation)
and botocore's adaptive retries, which back off and rate-limit the client when SQS throttles.
Batch calls (10 entries, SQS's maximum) report failed entries one by one; those come back as
``EntryFailure``s instead of exceptions, so one stale receipt handle never fails its batch.

Errors leave as AwsAccessError naming the queue and what the profile/role lacks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trailwarden.agent.sources.aws import (
    AwsSession,
    S3Bucket,
    aws_session,
    other_error,
    s3_client,
)
from trailwarden.common.errors import AwsAccessError
from trailwarden.common.schema.sources import SqsSourceConfig

log = logging.getLogger(__name__)

BATCH_MAX = 10
"""Messages per receive, and entries per delete or visibility batch (SQS's limit)."""
_MISSING_QUEUE_CODES = {
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NonExistentQueue",
}
_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "403",
    "Forbidden",
    "InvalidClientTokenId",
}
_PERMISSIONS = {
    "receive": "sqs:ReceiveMessage",
    "delete": "sqs:DeleteMessage",
    "extend": "sqs:ChangeMessageVisibility",
    "lookup": "sqs:GetQueueUrl",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One received message."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    """``ApproximateReceiveCount``: 1 on the first delivery."""
    sent_ms: int
    """``SentTimestamp`` (ms since the epoch): when the notification was queued."""


@dataclass(frozen=True, slots=True)
class EntryFailure:
    """One entry of a batch call that SQS refused."""

    message_id: str
    code: str
    message: str


class SqsQueue:
    """One queue seen through one source's credentials and endpoint."""

    def __init__(self, client: Any, url: str, source: str) -> None:
        self._client = client
        self.url = url
        self.source = source

    def receive(self, wait_s: float, visibility_s: float) -> list[Message]:
        """Up to 10 messages, long-polling ``wait_s`` when the queue is empty."""
        try:
            response = self._client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=BATCH_MAX,
                WaitTimeSeconds=int(wait_s),
                VisibilityTimeout=int(visibility_s),
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "receive") from exc
        out: list[Message] = []
        for entry in response.get("Messages", ()):
            attributes = entry.get("Attributes", {})
            out.append(
                Message(
                    message_id=str(entry.get("MessageId", "")),
                    receipt_handle=str(entry.get("ReceiptHandle", "")),
                    body=str(entry.get("Body", "")),
                    receive_count=_int(attributes.get("ApproximateReceiveCount"), 1),
                    sent_ms=_int(attributes.get("SentTimestamp"), 0),
                )
            )
        return out

    def delete(self, messages: Sequence[Message]) -> list[EntryFailure]:
        """Delete ``messages`` (any number, sent 10 at a time); the entries SQS refused."""
        return self._batched(messages, "delete", self._client.delete_message_batch, None)

    def extend(self, messages: Sequence[Message], timeout_s: float) -> list[EntryFailure]:
        """Hide ``messages`` for another ``timeout_s`` from now; the entries SQS refused."""
        return self._batched(
            messages, "extend", self._client.change_message_visibility_batch, int(timeout_s)
        )

    def release(self, messages: Sequence[Message]) -> list[EntryFailure]:
        """Make ``messages`` visible again at once (taken but not started: shutting down)."""
        return self._batched(messages, "extend", self._client.change_message_visibility_batch, 0)

    def _batched(
        self,
        messages: Sequence[Message],
        action: str,
        call: Callable[..., Any],
        timeout: int | None,
    ) -> list[EntryFailure]:
        failures: list[EntryFailure] = []
        for first in range(0, len(messages), BATCH_MAX):
            chunk = messages[first : first + BATCH_MAX]
            entries: list[dict[str, Any]] = []
            by_id: dict[str, Message] = {}
            for index, message in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(index), "ReceiptHandle": message.receipt_handle}
                if timeout is not None:
                    entry["VisibilityTimeout"] = timeout
                entries.append(entry)
                by_id[str(index)] = message
            try:
                response = call(QueueUrl=self.url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise self._translate(exc, action) from exc
            for failed in response.get("Failed", ()):
                refused = by_id.get(str(failed.get("Id")))
                failures.append(
                    EntryFailure(
                        refused.message_id if refused else "?",
                        str(failed.get("Code", "")),
                        str(failed.get("Message", "")),
                    )
                )
        return failures

    def _translate(self, exc: Exception, action: str) -> AwsAccessError:
        where = f"queue {self.url}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "") or "")
            message = str(error.get("Message", "") or "")
            code, message = _unwrap_xml(code, message)
            if code in _MISSING_QUEUE_CODES:
                return AwsAccessError(
                    f"{action}: the queue does not exist", source=self.source, where=where
                )
            if code in _DENIED_CODES:
                error_out = AwsAccessError(
                    f"{action}: access denied ({message or code}); check the profile/role "
                    f"policy for {_PERMISSIONS[action]} on the queue",
                    source=self.source,
                    where=where,
                )
                error_out.retryable = False  # type: ignore[attr-defined]
                return error_out
            if message != str(exc.response.get("Error", {}).get("Message", "") or ""):
                return AwsAccessError(
                    f"{action}: {code or 'error'}: {message}".rstrip(": "),
                    source=self.source,
                    where=where,
                )
        return other_error(exc, action, self.source, where)


class SqsClients:
    """The queue of an SQS source and the buckets its notifications name (one S3 client)."""

    def __init__(self, queue: SqsQueue, s3: Any, source: str) -> None:
        self.queue = queue
        self._s3 = s3
        self._source = source
        self._buckets: dict[str, S3Bucket] = {}

    def bucket(self, name: str) -> S3Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = S3Bucket(self._s3, name, self._source)
        return bucket


def open_queue(config: SqsSourceConfig) -> SqsClients:
    """The clients of an SQS source: its queue (looked up by name if need be) and S3."""
    where = f"queue {config.queue_url or config.sqs_name}"
    session = aws_session(config, where, config.region)
    client = _sqs_client(session, config, where)
    url = config.queue_url or _queue_url(client, config, where)
    queue = SqsQueue(client, url, config.name)
    s3 = s3_client(session, config, where)
    log.info(
        "fetch: source %s reads queue %s (profile %s%s)",
        config.name,
        url,
        config.aws_profile or "default chain",
        f", role {config.iam_role_arn}" if config.iam_role_arn else "",
    )
    return SqsClients(queue, s3, config.name)


def check_profile(config: SqsSourceConfig) -> None:
    """Build the session and clients only (no network call): the profile exists here."""
    where = f"queue {config.queue_url or config.sqs_name}"
    session = aws_session(config, where, config.region)
    _sqs_client(session, config, where)


def _sqs_client(session: AwsSession, config: SqsSourceConfig, where: str) -> Any:
    try:
        return session.core.create_client(
            "sqs",
            region_name=session.region,
            endpoint_url=config.sqs_endpoint or None,
            config=session.client_config,
        )
    except (BotoCoreError, ValueError) as exc:
        raise AwsAccessError(
            f"cannot create the SQS client: {exc}", source=config.name, where=where
        ) from exc


def _queue_url(client: Any, config: SqsSourceConfig, where: str) -> str:
    try:
        return str(client.get_queue_url(QueueName=config.sqs_name)["QueueUrl"])
    except (ClientError, BotoCoreError) as exc:
        queue = SqsQueue(client, f"{config.sqs_name} ({config.region or 'default region'})", "")
        error = queue._translate(exc, "lookup")
        raise AwsAccessError(error.reason, source=config.name, where=where) from exc


_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _unwrap_xml(code: str, message: str) -> tuple[str, str]:
    """An error that came back as an XML document to a JSON-protocol client (some proxies and
    emulators answer so): its own code and message, not the document."""
    if not message.lstrip().startswith("<"):
        return code, message
    found_code, found_message = _XML_CODE.search(message), _XML_MESSAGE.search(message)
    return (
        found_code.group(1) if found_code else code,
        found_message.group(1) if found_message else "",
    )


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
