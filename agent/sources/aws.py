"""The AWS SDK adapter: sessions, assumed roles, endpoints, and S3 calls with errors translated.

The only module of the agent that imports botocore; it uses it directly (boto3's additions,
such as its S3 transfer manager, would cost an idle agent ~2.5 MiB for nothing). Credentials
come from the host: a named profile (``~/.aws/config``, ``AWS_CONFIG_FILE``) or the default
chain, optionally topped with an assumed role whose temporary credentials botocore refreshes
before they expire (``DeferredRefreshableCredentials`` over an ``AssumeRoleCredentialFetcher``).
Retries use botocore's adaptive mode, which also rate-limits the client when S3 throttles.

Errors leave as ours, naming bucket/key and the reason: listing problems and refused access as
AwsAccessError (retried on a later pass), unusable objects as ObjectError. Neither credentials
nor tokens are ever put in a message or a log line.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ProfileNotFound,
)
from botocore.parsers import ResponseParserFactory

from trailwarden.common.errors import AwsAccessError, ObjectError
from trailwarden.common.schema.sources import CloudTrailSourceConfig

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""Attempts per S3/STS call (adaptive mode backs off and rate-limits on throttling)."""
DEFAULT_REGION = "us-east-1"
ROLE_SESSION_NAME = "trailwarden-agent"
_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
_CHATTY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")
"""At DEBUG these log whole requests and responses, STS credentials included."""


def _quiet_sdk_loggers() -> None:
    """Keep the SDK's DEBUG output (which carries credentials and tokens) out of our logs."""
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object."""

    key: str
    size: int


class S3Bucket:
    """One bucket seen through one source's credentials and endpoint."""

    def __init__(self, client: Any, bucket: str, source: str) -> None:
        self._client = client
        self.bucket = bucket
        self.source = source

    def common_prefixes(self, prefix: str) -> Iterator[str]:
        """Every ``CommonPrefix`` under ``prefix`` (``Delimiter='/'``), through every page."""
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for entry in page.get("CommonPrefixes", ()):
                    yield entry["Prefix"]
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "list", prefix) from exc

    def objects(self, prefix: str, start_after: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` sorting after ``start_after``, in key order, every page."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(**kwargs):
                for entry in page.get("Contents", ()):
                    yield ObjectInfo(entry["Key"], int(entry.get("Size", 0)))
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "list", prefix) from exc

    def get(self, key: str) -> bytes:
        """The object's bytes (whole: memory is bounded by the objects in flight)."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "get", key) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, "delete", key) from exc

    def _translate(self, exc: Exception, action: str, key: str) -> AwsAccessError | ObjectError:
        where = f"s3://{self.bucket}/{key}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "") or "")
            message = str(error.get("Message", "") or "")
            if code == "NoSuchBucket":
                return AwsAccessError(
                    f"{action}: bucket {self.bucket!r} does not exist",
                    source=self.source,
                    where=where,
                )
            if action == "get" and code in _MISSING_KEY_CODES:
                return ObjectError(
                    "get: object no longer exists (deleted after listing?)",
                    source=self.source,
                    where=where,
                )
            if code == "InvalidObjectState":
                return _settled(
                    AwsAccessError(
                        f"{action}: object is archived ({message or code}); restore it from "
                        "its archive storage class to read it",
                        source=self.source,
                        where=where,
                    )
                )
            if code.startswith("KMS.") or code == "KMSAccessDenied":
                return _settled(
                    AwsAccessError(
                        f"{action}: cannot decrypt ({code}: {message}); the profile/role needs "
                        "kms:Decrypt on the trail's key",
                        source=self.source,
                        where=where,
                    )
                )
            if code in {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}:
                return _settled(
                    AwsAccessError(
                        f"{action}: access denied ({message or code}); check the profile/role "
                        "policy for s3:ListBucket, s3:GetObject"
                        + (", s3:DeleteObject" if action == "delete" else ""),
                        source=self.source,
                        where=where,
                    )
                )
        return other_error(exc, action, self.source, where)


def other_error(exc: Exception, action: str, source: str, where: str) -> AwsAccessError:
    """An AWS failure no caller has a better message for: the service's code and message, no
    credentials, or the exception itself (network, timeouts); retried later."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "") or "")
        message = str(error.get("Message", "") or "")
        return AwsAccessError(
            f"{action}: {code or 'error'}: {message}".rstrip(": "), source=source, where=where
        )
    if isinstance(exc, NoCredentialsError):
        return AwsAccessError(
            f"{action}: no AWS credentials found (set aws_profile or the host's default "
            "credentials)",
            source=source,
            where=where,
        )
    return AwsAccessError(f"{action}: {type(exc).__name__}: {exc}", source=source, where=where)


_shared_loader: Any = None
_loader_lock = threading.Lock()
SERVICES_USED = frozenset({"s3", "sqs", "sts", "sso", "sso-oidc", "signin"})
"""Services the agent creates clients for: S3, SQS (notifications), STS (roles), and those
botocore's credential providers may call (SSO profiles, ``aws login``)."""
_DOC_KEYS = frozenset({"documentation", "documentationUrl"})


class _LeanModelFiles(botocore.loaders.JSONFileLoader):  # type: ignore[misc]  # untyped
    """botocore's data files without what the agent never reads: plain dicts instead of
    OrderedDicts (insertion-ordered anyway), no documentation strings, and in ``endpoints``
    only the services of SERVICES_USED. An S3 client then holds ~2 MiB of model instead of
    ~12 MiB (of an idle agent's ~85 MiB): the S3 model is half documentation, and
    endpoints.json lists every AWS service."""

    def load_file(self, file_path: str) -> Any:
        for ext, opener in ((".json", open), (".json.gz", gzip.open)):
            if os.path.isfile(file_path + ext):
                with opener(file_path + ext, "rb") as handle:
                    payload = handle.read()
                data = json.loads(payload, object_pairs_hook=_without_docs)
                if os.path.basename(file_path) == "endpoints":
                    _keep_services(data)
                return data
        return None


def _without_docs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Emptied, not removed: botocore indexes some of them. Only string values: a structure
    # member that happened to be called "documentation" is a dict and stays.
    return {k: "" if k in _DOC_KEYS and isinstance(v, str) else v for k, v in pairs}


def _keep_services(endpoints: Any) -> None:
    for partition in endpoints.get("partitions", ()):
        services = partition.get("services")
        if isinstance(services, dict):
            partition["services"] = {k: v for k, v in services.items() if k in SERVICES_USED}


def _lean_loader(core: botocore.session.Session) -> Any:
    """A model loader like botocore's own (same search path, ``AWS_DATA_PATH`` included)
    that reads through ``_LeanModelFiles``."""
    loader = botocore.loaders.create_loader(core.get_config_variable("data_path"))
    loader.file_loader = _LeanModelFiles()
    return loader


def _timestamp_text(value: Any) -> Any:
    """Response timestamps left as received: the agent reads none of S3's (LastModified of
    every listed object, headers of every GET), and dateutil parsing them cost ~0.7 ms of CPU
    per GET."""
    return value


def _settled(error: AwsAccessError) -> AwsAccessError:
    """Mark a refusal that retrying will not cure by itself (denied, archived, no key access);
    network failures and throttling stay ``retryable``."""
    error.retryable = False  # type: ignore[attr-defined]
    return error


def _new_session(profile: str) -> botocore.session.Session:
    """A session of its own (credentials differ per source) sharing botocore's model loader,
    so a new or reconfigured source does not parse the S3/STS service models again."""
    global _shared_loader
    core = botocore.session.Session(profile=profile or None)
    if profile and profile not in core.available_profiles:
        raise ProfileNotFound(profile=profile)
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = _lean_loader(core)
        core.register_component("data_loader", _shared_loader)
    return core


class AwsAccess(Protocol):
    """The credential options every AWS source shares (profile, role, endpoints)."""

    @property
    def name(self) -> str: ...
    @property
    def aws_profile(self) -> str: ...
    @property
    def iam_role_arn(self) -> str: ...
    @property
    def iam_role_external_id(self) -> str: ...
    @property
    def iam_role_duration(self) -> int: ...
    @property
    def sts_endpoint(self) -> str: ...
    @property
    def service_endpoint(self) -> str: ...
    @property
    def workers(self) -> int: ...


@dataclass(frozen=True)
class AwsSession:
    """A botocore session with the source's credentials, and what its clients share."""

    core: botocore.session.Session
    region: str
    client_config: Config


def aws_session(config: AwsAccess, where: str, region: str = "") -> AwsSession:
    """The session for ``config``: profile, optional assumed role, retries, pool size.

    ``where`` names what the source reads (``s3://bucket``, the queue) in errors.
    """
    _quiet_sdk_loggers()
    try:
        core = _new_session(config.aws_profile)
    except ProfileNotFound as exc:
        raise AwsAccessError(
            f"AWS profile {config.aws_profile!r} not found in this host's AWS config files",
            source=config.name,
            where=where,
        ) from exc
    region = region or core.get_config_variable("region") or DEFAULT_REGION
    client_config = Config(
        retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=max(10, config.workers * 2),
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="trailwarden-agent",
    )
    if config.iam_role_arn:
        _assume_role(core, config, region, client_config, where)
    return AwsSession(core, region, client_config)


def s3_client(session: AwsSession, config: AwsAccess, where: str) -> Any:
    """An S3 client of ``session`` that leaves response timestamps unparsed."""
    core = session.core
    s3_parsers = ResponseParserFactory()
    s3_parsers.set_parser_defaults(timestamp_parser=_timestamp_text)
    core.register_component("response_parser_factory", s3_parsers)
    try:
        return core.create_client(
            "s3",
            region_name=session.region,
            endpoint_url=config.service_endpoint or None,
            config=session.client_config,
        )
    except (BotoCoreError, ValueError) as exc:
        raise AwsAccessError(
            f"cannot create the S3 client: {exc}", source=config.name, where=where
        ) from exc
    finally:
        # Clients made later (STS for the role, created on first use) parse timestamps:
        # credential expiry is one.
        core.register_component("response_parser_factory", ResponseParserFactory())


def open_bucket(config: CloudTrailSourceConfig) -> S3Bucket:
    """An S3Bucket for ``config``: profile, optional assumed role, endpoints, retries."""
    where = f"s3://{config.bucket}"
    client = s3_client(aws_session(config, where), config, where)
    log.info(
        "fetch: source %s uses bucket %s (profile %s%s%s)",
        config.name,
        config.bucket,
        config.aws_profile or "default chain",
        f", role {config.iam_role_arn}" if config.iam_role_arn else "",
        f", endpoint {config.service_endpoint}" if config.service_endpoint else "",
    )
    return S3Bucket(client, config.bucket, config.name)


def _assume_role(
    core: botocore.session.Session,
    config: AwsAccess,
    region: str,
    client_config: Config,
    where: str,
) -> None:
    """Replace the session's credentials by the role's, refreshed automatically."""
    source_credentials = core.get_credentials()
    if source_credentials is None:
        raise AwsAccessError(
            f"no AWS credentials to assume {config.iam_role_arn} with (profile "
            f"{config.aws_profile or 'default chain'})",
            source=config.name,
            where=where,
        )

    def create_sts_client(service: str, **kwargs: Any) -> Any:
        return core.create_client(
            service,
            region_name=region,
            endpoint_url=config.sts_endpoint or None,
            config=client_config,
            **kwargs,
        )

    extra: dict[str, Any] = {
        "RoleSessionName": ROLE_SESSION_NAME,
        "DurationSeconds": config.iam_role_duration,
    }
    if config.iam_role_external_id:
        extra["ExternalId"] = config.iam_role_external_id
    fetcher = AssumeRoleCredentialFetcher(
        create_sts_client, source_credentials, config.iam_role_arn, extra_args=extra
    )
    core._credentials = DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
