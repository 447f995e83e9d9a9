"""The ``[[sources]]`` schema: what the agent collects, from the local agent.toml or central config.

Names follow Wazuh's ``aws-s3`` module where one exists. Parsed once, here, into frozen
dataclasses; unknown keys and bad values are refused with the source's index, the key and the
reason (``agent.toml: sources[2].regions: expected a list of strings``). AWS secrets never belong
in this config (they stay in the host's profiles), so keys that look like them are refused with
SecretInConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from trailwarden.common.errors import ConfigError, SecretInConfigError
from trailwarden.common.schema.aws_names import bucket_name_problem, region_problem
from trailwarden.common.schema.filters import DiscardRule, compile_regex
from trailwarden.common.timeparse import parse_duration, parse_timestamp

DEFAULT_INTERVAL = 300.0
"""Seconds between passes over a source (``interval = "5m"``)."""
DEFAULT_WORKERS = 8
"""Concurrent object downloads per source."""
MAX_WORKERS = 64
DEFAULT_ROLE_DURATION = 3600
ROLE_DURATION_RANGE = (900, 43200)
DAY_S = 86400.0
DEFAULT_LATE_WINDOW = 7 * DAY_S
"""How far behind a stream's newest collected day every pass lists again (``late_window``)."""
LATE_WINDOW_RANGE = (DAY_S, 90 * DAY_S)
DEFAULT_RECONCILE_INTERVAL = DAY_S
"""How often each stream is listed completely, from its first day (``reconcile_interval``)."""
RECONCILE_INTERVAL_RANGE = (60.0, 30 * DAY_S)
DEFAULT_DIRECTORY_GLOB = "**/*.json*"
DEFAULT_VISIBILITY_TIMEOUT = 300.0
"""Seconds a received SQS message stays hidden from other readers (extended while in flight)."""
VISIBILITY_TIMEOUT_RANGE = (2.0, 43200.0)
"""SQS allows up to 12 hours; under 2 s the agent could not extend it in time."""
DEFAULT_WAIT_TIME = 20.0
"""Long poll of each SQS receive (SQS's maximum): an empty queue costs one call per 20 s."""
WAIT_TIME_RANGE = (1.0, 20.0)
"""0 would be short polling: a busy loop on an empty queue, so it is refused."""
DEFAULT_MAX_RECEIVE_COUNT = 5
MAX_RECEIVE_COUNT_RANGE = (1, 1000)
"""Matches ``.json`` and ``.json.gz`` (and ``.jsonl``) at any depth."""

_SECRET_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key",
        "secret_key",
        "session_token",
        "aws_key",
        "aws_secret",
    }
)
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")


@dataclass(frozen=True)
class CloudTrailSourceConfig:
    """An S3 bucket written by CloudTrail (``type = "cloudtrail"``)."""

    type: ClassVar[str] = "cloudtrail"
    name: str
    """Unique name of the source in the agent's config; reported with every batch."""
    bucket: str
    """The S3 bucket (Wazuh: ``<name>``)."""
    aws_profile: str = ""
    """Profile in the host's AWS config files; empty: the default credential chain."""
    iam_role_arn: str = ""
    """Role assumed (and refreshed before it expires) on top of the profile's credentials."""
    iam_role_external_id: str = ""
    """ExternalId passed with AssumeRole."""
    iam_role_duration: int = DEFAULT_ROLE_DURATION
    """Lifetime of the assumed role's credentials in seconds (900-43200)."""
    path: str = ""
    """Key prefix before ``AWSLogs/`` (normalised to end with ``/``)."""
    path_suffix: str = ""
    """Key part after ``AWSLogs/`` and before the account (normalised to end with ``/``)."""
    aws_organization_id: str = ""
    """Organization trail layout ``AWSLogs/<org>/<account>/...``; ``o-`` folders are also found
    by discovery when this is empty."""
    aws_account_ids: tuple[str, ...] = ()
    """Accounts to read; empty: discover every account in the bucket."""
    aws_account_alias: str = ""
    """Friendly name sent with the records (``aws.log_info.aws_account_alias``)."""
    regions: tuple[str, ...] = ()
    """Regions to read; empty: discover every region present."""
    only_logs_after: datetime | None = None
    """Ignore log files dated before this day; unset on a first run means today (UTC)."""
    interval: float = DEFAULT_INTERVAL
    """Seconds between passes."""
    run_on_start: bool = True
    """Run a pass as soon as the agent starts (else wait one interval)."""
    skip_on_error: bool = True
    """Record an unusable object as failed and go on; false: stop the pass and report."""
    remove_from_bucket: bool = False
    """Delete each object once its records are safely in the spool."""
    service_endpoint: str = ""
    """S3 endpoint override (VPC endpoint, S3-compatible store)."""
    sts_endpoint: str = ""
    """STS endpoint override used to assume ``iam_role_arn``."""
    workers: int = DEFAULT_WORKERS
    """Concurrent object downloads."""
    discard: tuple[DiscardRule, ...] = ()
    """Records matching any rule are dropped before sending (Wazuh ``discard_regex``)."""
    late_window: float = DEFAULT_LATE_WINDOW
    """Seconds (whole days, 1d-90d) behind a stream's newest collected day that every pass
    lists again, so files delivered that late are collected as usual. Files older than this
    are found by the reconcile (``reconcile_interval``), collected, and reported as late."""
    reconcile_interval: float = DEFAULT_RECONCILE_INTERVAL
    """Seconds (1m-30d) between complete listings of each account/region stream from its first
    day, which collect files that arrived later than ``late_window`` (CloudTrail redelivers for
    up to 30 days; backfills and copied-in objects can be older)."""


@dataclass(frozen=True)
class DirectorySourceConfig:
    """CloudTrail files already on disk (``type = "directory"``), for offline and forensic work."""

    type: ClassVar[str] = "directory"
    name: str
    """Unique name of the source."""
    path: Path
    """Folder holding ``.json`` / ``.json.gz`` files (Records envelope, arrays or JSON lines)."""
    glob: str = DEFAULT_DIRECTORY_GLOB
    """Which files under ``path`` to read."""
    interval: float = DEFAULT_INTERVAL
    """Seconds between passes (new and changed files are picked up)."""
    run_on_start: bool = True
    """Run a pass as soon as the agent starts."""
    skip_on_error: bool = True
    """Record an unusable file as failed and go on; false: stop the pass and report."""
    workers: int = 2
    """Files parsed concurrently."""
    aws_account_alias: str = ""
    """Friendly account name sent with the records."""
    discard: tuple[DiscardRule, ...] = field(default=())
    """Records matching any rule are dropped before sending."""


@dataclass(frozen=True)
class SqsSourceConfig:
    """S3 object notifications read from an SQS queue (``type = "cloudtrail-sqs"``).

    The objects named by each message are fetched with the same credentials, parser, discard
    rules and spool as the ``cloudtrail`` source; a message is deleted only once the manager
    has acknowledged every record of its objects.
    """

    type: ClassVar[str] = "cloudtrail-sqs"
    interval: ClassVar[float] = 0.0
    """Passes follow each other at once: a pass ends on a long poll that finds nothing."""
    run_on_start: ClassVar[bool] = True
    name: str
    """Unique name of the source; reported with every batch."""
    queue_url: str
    """The queue's URL (``https://sqs.REGION.amazonaws.com/ACCOUNT/NAME``); from ``sqs_name``
    and ``region`` when not given."""
    sqs_name: str = ""
    """The queue's name (Wazuh: ``<sqs_name>``), looked up in ``region`` when ``queue_url`` is
    not given."""
    region: str = ""
    """Region of the queue (and first guess for the buckets); empty: from ``queue_url``, else
    the profile's region."""
    aws_profile: str = ""
    """Profile in the host's AWS config files; empty: the default credential chain."""
    iam_role_arn: str = ""
    """Role assumed (and refreshed before it expires) on top of the profile's credentials."""
    iam_role_external_id: str = ""
    """ExternalId passed with AssumeRole."""
    iam_role_duration: int = DEFAULT_ROLE_DURATION
    """Lifetime of the assumed role's credentials in seconds (900-43200)."""
    aws_account_alias: str = ""
    """Friendly name sent with the records (``aws.log_info.aws_account_alias``)."""
    service_endpoint: str = ""
    """S3 endpoint override (VPC endpoint, S3-compatible store)."""
    sqs_endpoint: str = ""
    """SQS endpoint override (VPC endpoint)."""
    sts_endpoint: str = ""
    """STS endpoint override used to assume ``iam_role_arn``."""
    workers: int = DEFAULT_WORKERS
    """Concurrent object downloads."""
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    """How long a received message stays hidden from other readers; extended before half of it
    has passed while its objects are in flight."""
    wait_time: float = DEFAULT_WAIT_TIME
    """Long poll of each receive (1-20 s)."""
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT
    """Receives after which a message that still fails is reported as poison and left to the
    queue's dead-letter queue."""
    discard: tuple[DiscardRule, ...] = ()
    """Records matching any rule are dropped before sending (Wazuh ``discard_regex``)."""


SourceConfig = CloudTrailSourceConfig | DirectorySourceConfig | SqsSourceConfig


def parse_sources(items: object, origin: str) -> tuple[SourceConfig, ...]:
    """Parse the ``[[sources]]`` list; ``origin`` names the document (``agent.toml``)."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{origin}: sources: expected a list of tables ([[sources]])")
    out: list[SourceConfig] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"{origin}: sources[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected a table")
        source = _parse_one(item, where)
        if source.name in seen:
            raise ConfigError(
                f"{where}.name: {source.name!r} is already the name of sources[{seen[source.name]}]"
            )
        seen[source.name] = index
        out.append(source)
    return tuple(out)


def _parse_one(item: Mapping[str, Any], where: str) -> SourceConfig:
    for key in item:
        if str(key).lower() in _SECRET_KEYS:
            raise SecretInConfigError(
                f"{where}.{key}: AWS credentials never go in the config; use aws_profile "
                "(a profile on the agent host) or iam_role_arn"
            )
    kind = item.get("type")
    if kind == "cloudtrail":
        return _parse_cloudtrail(_Reader(item, where))
    if kind == "directory":
        return _parse_directory(_Reader(item, where))
    if kind == SqsSourceConfig.type:
        return _parse_sqs(_Reader(item, where))
    raise ConfigError(
        f'{where}.type: expected "cloudtrail", "cloudtrail-sqs" or "directory", got {kind!r}'
    )


class _Reader:
    """Takes keys out of one table with type checks; ``finish`` refuses what is left."""

    def __init__(self, item: Mapping[str, Any], where: str) -> None:
        self.item = dict(item)
        self.where = where
        self.item.pop("type")

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.where}.{key}: {reason}")

    def string(self, key: str, default: str = "") -> str:
        value = self.item.pop(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {type(value).__name__}")
        return value.strip()

    def boolean(self, key: str, default: bool) -> bool:
        value = self.item.pop(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.item.pop(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is outside {low}-{high}")
        return value

    def strings(self, key: str, check: Callable[[str], bool], what: str) -> tuple[str, ...]:
        value = self.item.pop(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        for entry in value:
            if not check(entry):
                raise self.fail(key, f"{entry!r} is not {what}")
        return tuple(dict.fromkeys(value))

    def regions(self) -> tuple[str, ...]:
        """``regions``: each one a region of botocore's endpoint data."""
        value = self.strings("regions", lambda v: True, "")
        for region in value:
            problem = region_problem(region)
            if problem:
                raise self.fail("regions", problem)
        return value

    def duration(
        self, key: str, default: float, limits: tuple[float, float] | None = None
    ) -> float:
        value = self.item.pop(key, default)
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None
        if seconds <= 0:
            raise self.fail(key, "must be more than zero")
        if limits is not None and not limits[0] <= seconds <= limits[1]:
            raise self.fail(key, f"{seconds:g}s is outside {limits[0]:g}s-{limits[1]:g}s")
        return seconds

    def bounded_duration(
        self, key: str, default: float, bounds: tuple[float, float], *, whole_days: bool = False
    ) -> float:
        seconds = self.duration(key, default)
        low, high = bounds
        if not low <= seconds <= high:
            raise self.fail(key, f"{int(seconds)}s is outside {int(low)}s-{int(high)}s")
        if whole_days and seconds % DAY_S:
            raise self.fail(key, "must be whole days (like 7d): streams are listed by day")
        return seconds

    def endpoint(self, key: str) -> str:
        value = self.string(key)
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise self.fail(key, f"{value!r} is not an http(s):// URL")
        return value.rstrip("/")

    def prefix(self, key: str) -> str:
        value = self.string(key).strip("/")
        return f"{value}/" if value else ""

    def discard(self) -> tuple[DiscardRule, ...]:
        value = self.item.pop("discard", [])
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, list):
            raise self.fail("discard", "expected a list of tables ([[sources.discard]])")
        rules: list[DiscardRule] = []
        for index, rule in enumerate(value):
            at = f"discard[{index}]"
            if not isinstance(rule, Mapping):
                raise self.fail(at, "expected a table with field and regex")
            unknown = set(rule) - {"field", "regex"}
            if unknown:
                raise self.fail(f"{at}.{sorted(unknown)[0]}", "unknown key (expected field, regex)")
            fld, regex = rule.get("field"), rule.get("regex")
            if not isinstance(fld, str) or not fld.strip():
                raise self.fail(f"{at}.field", "expected a dotted field name like eventName")
            if not isinstance(regex, str):
                raise self.fail(f"{at}.regex", "expected a regular expression string")
            try:
                rules.append(DiscardRule(fld.strip(), regex, compile_regex(regex)))
            except ValueError as exc:
                raise self.fail(f"{at}.regex", f"invalid regular expression: {exc}") from None
        return tuple(rules)

    def finish(self) -> None:
        if self.item:
            key = sorted(self.item)[0]
            raise self.fail(key, "unknown key")


def _parse_cloudtrail(r: _Reader) -> CloudTrailSourceConfig:
    bucket = r.string("bucket")
    if not bucket:
        raise r.fail("bucket", "required: the S3 bucket CloudTrail writes to")
    problem = bucket_name_problem(bucket)
    if problem:
        raise r.fail("bucket", problem)
    name = r.string("name") or f"cloudtrail:{bucket}"
    only_after_text = r.item.pop("only_logs_after", None)
    only_after: datetime | None = None
    if only_after_text is not None:
        if not isinstance(only_after_text, str):
            raise r.fail("only_logs_after", "expected a date string like 2026-11-01")
        try:
            only_after = parse_timestamp(only_after_text)
        except ValueError as exc:
            raise r.fail("only_logs_after", str(exc)) from None
    org = r.string("aws_organization_id")
    if org and not _ORG_ID.match(org):
        raise r.fail("aws_organization_id", f"{org!r} is not an organization ID (o-...)")
    role = r.string("iam_role_arn")
    if role and not role.startswith("arn:"):
        raise r.fail("iam_role_arn", f"{role!r} is not an ARN")
    config = CloudTrailSourceConfig(
        name=name,
        bucket=bucket,
        aws_profile=r.string("aws_profile"),
        iam_role_arn=role,
        iam_role_external_id=r.string("iam_role_external_id"),
        iam_role_duration=r.integer(
            "iam_role_duration", DEFAULT_ROLE_DURATION, *ROLE_DURATION_RANGE
        ),
        path=r.prefix("path"),
        path_suffix=r.prefix("path_suffix"),
        aws_organization_id=org,
        aws_account_ids=r.strings(
            "aws_account_ids", lambda v: bool(_ACCOUNT_ID.match(v)), "a 12-digit account ID"
        ),
        aws_account_alias=r.string("aws_account_alias"),
        regions=r.regions(),
        only_logs_after=only_after,
        interval=r.duration("interval", DEFAULT_INTERVAL),
        run_on_start=r.boolean("run_on_start", True),
        skip_on_error=r.boolean("skip_on_error", True),
        remove_from_bucket=r.boolean("remove_from_bucket", False),
        service_endpoint=r.endpoint("service_endpoint"),
        sts_endpoint=r.endpoint("sts_endpoint"),
        workers=r.integer("workers", DEFAULT_WORKERS, 1, MAX_WORKERS),
        discard=r.discard(),
        late_window=r.bounded_duration(
            "late_window", DEFAULT_LATE_WINDOW, LATE_WINDOW_RANGE, whole_days=True
        ),
        reconcile_interval=r.bounded_duration(
            "reconcile_interval", DEFAULT_RECONCILE_INTERVAL, RECONCILE_INTERVAL_RANGE
        ),
    )
    r.finish()
    return config


def _parse_directory(r: _Reader) -> DirectorySourceConfig:
    path = r.string("path")
    if not path:
        raise r.fail("path", "required: the folder holding CloudTrail files")
    name = r.string("name") or f"directory:{path}"
    glob = r.string("glob", DEFAULT_DIRECTORY_GLOB) or DEFAULT_DIRECTORY_GLOB
    if glob.startswith("/") or ".." in Path(glob).parts:
        raise r.fail("glob", f"{glob!r} must stay inside path (relative, no '..')")
    config = DirectorySourceConfig(
        name=name,
        path=Path(path).expanduser(),
        glob=glob,
        interval=r.duration("interval", DEFAULT_INTERVAL),
        run_on_start=r.boolean("run_on_start", True),
        skip_on_error=r.boolean("skip_on_error", True),
        workers=r.integer("workers", 2, 1, MAX_WORKERS),
        aws_account_alias=r.string("aws_account_alias"),
        discard=r.discard(),
    )
    r.finish()
    return config


_QUEUE_URL = re.compile(r"^https?://[^\s/]+/(\d{12}|[^\s/]+)/([A-Za-z0-9_-]{1,80}(\.fifo)?)$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
_QUEUE_HOST_REGION = re.compile(r"^https?://sqs[.-]([a-z]{2}(-[a-z]+)+-\d+)\.")


def _parse_sqs(r: _Reader) -> SqsSourceConfig:
    queue_url = r.string("queue_url").rstrip("/")
    sqs_name = r.string("sqs_name")
    region = r.string("region")
    problem = region_problem(region) if region else ""
    if problem:
        raise r.fail("region", problem)
    if queue_url and sqs_name:
        raise r.fail("sqs_name", "give queue_url or sqs_name (with region), not both")
    if queue_url:
        match = _QUEUE_URL.match(queue_url)
        if not match:
            raise r.fail(
                "queue_url",
                f"{queue_url!r} is not a queue URL like "
                "https://sqs.us-east-1.amazonaws.com/111122223333/trail-notifications",
            )
        host_region = _QUEUE_HOST_REGION.match(queue_url)
        if not region and host_region:
            region = host_region.group(1)
    elif sqs_name:
        if not _QUEUE_NAME.match(sqs_name):
            raise r.fail("sqs_name", f"{sqs_name!r} is not a queue name (letters, digits, - _)")
    else:
        raise r.fail("queue_url", "required: the queue's URL, or sqs_name with region")
    role = r.string("iam_role_arn")
    if role and not role.startswith("arn:"):
        raise r.fail("iam_role_arn", f"{role!r} is not an ARN")
    name = r.string("name") or f"cloudtrail-sqs:{sqs_name or queue_url.rsplit('/', 1)[-1]}"
    config = SqsSourceConfig(
        name=name,
        queue_url=queue_url,
        sqs_name=sqs_name,
        region=region,
        aws_profile=r.string("aws_profile"),
        iam_role_arn=role,
        iam_role_external_id=r.string("iam_role_external_id"),
        iam_role_duration=r.integer(
            "iam_role_duration", DEFAULT_ROLE_DURATION, *ROLE_DURATION_RANGE
        ),
        aws_account_alias=r.string("aws_account_alias"),
        service_endpoint=r.endpoint("service_endpoint"),
        sqs_endpoint=r.endpoint("sqs_endpoint"),
        sts_endpoint=r.endpoint("sts_endpoint"),
        workers=r.integer("workers", DEFAULT_WORKERS, 1, MAX_WORKERS),
        visibility_timeout=r.duration(
            "visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT, VISIBILITY_TIMEOUT_RANGE
        ),
        wait_time=r.duration("wait_time", DEFAULT_WAIT_TIME, WAIT_TIME_RANGE),
        max_receive_count=r.integer(
            "max_receive_count", DEFAULT_MAX_RECEIVE_COUNT, *MAX_RECEIVE_COUNT_RANGE
        ),
        discard=r.discard(),
    )
    r.finish()
    return config
