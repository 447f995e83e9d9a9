"""Import Wazuh's ``<wodle name="aws-s3">`` blocks from ossec.conf into central config TOML.

CloudTrail buckets and their options become ``[[sources]]`` (``interval``, ``run_on_start``,
``skip_on_error`` and ``remove_from_bucket`` of the wodle are copied into each of its buckets;
``only_logs_after``'s ``YYYY-MMM-DD`` becomes an ISO date), and ``<subscriber type="buckets">``
(S3 notifications read from SQS) becomes a ``cloudtrail-sqs`` source. Wazuh's legacy form, a
bare ``<bucket>name</bucket>`` in the wodle, is a CloudTrail bucket, as it is for Wazuh.
Everything that cannot be carried over is listed with where it was and why — other bucket
types, services and subscribers, calendar scheduling (``day``/``wday``/``time``), and AWS keys,
which never go in central config (put them in a profile on the agent host and name it with
``aws_profile``).

What Wazuh itself refuses is refused here too, with ConfigError naming where (so ``admin config
import-wazuh`` exits non-zero and stores no revision): no ``aws-s3`` wodle, a wodle with no
CloudTrail bucket, a bucket without a ``type`` or with an empty one, a bucket without a name,
and a value that cannot be read (``only_logs_after``, ``interval``, ``remove_from_bucket`` and
the other yes/no options, ``iam_role_duration``) — never dropped with a note, which would leave
the source reading from today on the default schedule. Bucket names and regions are then
checked by the sources schema (S3's naming rules, botocore's regions).

ossec.conf is often several ``<ossec_config>`` blocks in one file (not one XML document), so
the text is wrapped in one root before parsing. The file is the admin's own, read locally.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trailwarden.common.errors import ConfigError
from trailwarden.common.timeparse import parse_duration, parse_timestamp
from trailwarden.manager.central.document import validate_complete
from trailwarden.manager.central.toml_text import render_toml

_WODLE_OPTIONS = ("interval", "run_on_start", "skip_on_error", "remove_from_bucket")
_TEXT_OPTIONS = {
    "aws_profile": "aws_profile",
    "aws_account_alias": "aws_account_alias",
    "iam_role_arn": "iam_role_arn",
    "aws_organization_id": "aws_organization_id",
}
_PREFIX_OPTIONS = ("path", "path_suffix")
_ENDPOINT_OPTIONS = ("service_endpoint", "sts_endpoint")
_SECRETS = ("access_key", "secret_key")
_NOT_SUPPORTED = {
    "day": "calendar scheduling is not supported; use interval",
    "wday": "calendar scheduling is not supported; use interval",
    "time": "calendar scheduling is not supported; use interval",
    "service": "AWS services (CloudWatch Logs, Inspector, ...) are not collected by TrailWarden",
    "subscriber": "SQS subscribers are not supported yet",
}
_KEYS_LEFT_BEHIND = (
    "AWS keys never go in central config; put them in a profile on the agent host and name it "
    "with aws_profile"
)


@dataclass(frozen=True)
class ImportResult:
    toml: str
    """Central config TOML (checked with the agent's parser), headed by comments."""
    sources: int
    """CloudTrail buckets carried over."""
    not_carried: tuple[str, ...]
    """One line per option or block left behind: where, what, why."""


def import_wazuh_file(path: Path) -> ImportResult:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return import_wazuh(text, str(path))


def import_wazuh(text: str, origin: str = "ossec.conf") -> ImportResult:
    """Convert every aws-s3 wodle in ``text``; ConfigError if it is not XML or has none."""
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        root = ET.fromstring(f"<trailwarden-import>{body}</trailwarden-import>")  # noqa: S314
    except ET.ParseError as exc:
        raise ConfigError(f"{origin}: not valid XML: {exc}") from exc
    wodles = [w for w in root.iter("wodle") if w.get("name") == "aws-s3"]
    if not wodles:
        raise ConfigError(f'{origin}: no <wodle name="aws-s3"> block found')
    sources: list[dict[str, Any]] = []
    left: list[str] = []
    names: set[str] = set()
    for w_index, wodle in enumerate(wodles, 1):
        _convert_wodle(wodle, f"wodle[{w_index}]", sources, left, names)
    if not sources:
        reasons = "; ".join(left) if left else "no <bucket> at all"
        raise ConfigError(
            f"{origin}: the aws-s3 wodle has no CloudTrail bucket to import ({reasons})"
        )
    header = [
        f"# Imported from {origin}: {len(sources)} CloudTrail bucket(s).",
        *(
            ["# Not carried over:", *(f"#   {line}" for line in left)]
            if left
            else ["# Every option was carried over."]
        ),
    ]
    document: dict[str, Any] = {"sources": sources}
    validate_complete(document, f"{origin} (imported)")
    toml = "\n".join(header) + "\n\n" + render_toml(document)
    return ImportResult(toml=toml, sources=len(sources), not_carried=tuple(left))


def _convert_wodle(
    wodle: ET.Element,
    where: str,
    sources: list[dict[str, Any]],
    left: list[str],
    names: set[str],
) -> None:
    shared: dict[str, Any] = {}
    disabled = False
    buckets: list[tuple[str, ET.Element]] = []
    subscribers: list[dict[str, Any]] = []
    for child in wodle:
        tag, value = child.tag, (child.text or "").strip()
        at = f"{where}/{tag}"
        if tag == "disabled":
            disabled = _yes_no(value, at, left)
        elif tag in _WODLE_OPTIONS:
            shared[tag] = _option(tag, value, at, left)
        elif tag == "bucket":
            buckets.append((f"{where}/bucket[{len(buckets) + 1}]", child))
        elif tag in _SECRETS:
            left.append(f"{at}: {_KEYS_LEFT_BEHIND}")
        elif tag == "subscriber" and child.get("type") == "buckets":
            subscriber = _convert_subscriber(child, f"{where}/subscriber[buckets]", left)
            if subscriber is not None:
                subscribers.append(subscriber)
        elif tag == "subscriber":
            left.append(
                f"{at} type={child.get('type') or '?'}: only subscriber type=buckets (S3 "
                "notifications through SQS) is collected"
            )
        elif tag in _NOT_SUPPORTED:
            kind = child.get("type")
            left.append(f"{at}{f' type={kind}' if kind else ''}: {_NOT_SUPPORTED[tag]}")
        else:
            left.append(f"{at}: unknown option")
    for at, bucket in buckets:
        source = _convert_bucket(bucket, at, left)
        if source is None:
            continue
        source = {**source, **{k: v for k, v in shared.items() if k not in source}}
        if disabled:
            source["enabled"] = False
        name = source["bucket"] + (f"/{source['path'].strip('/')}" if source.get("path") else "")
        while name in names:
            name += "-2"
        names.add(name)
        sources.append({"type": "cloudtrail", "name": name, **source})
    for subscriber in subscribers:
        # The wodle's interval and run_on_start do not apply: the queue is read continuously.
        if disabled:
            subscriber["enabled"] = False
        name = f"sqs:{subscriber['sqs_name']}"
        while name in names:
            name += "-2"
        names.add(name)
        sources.append({"type": "cloudtrail-sqs", "name": name, **subscriber})
    if disabled:
        left.append(f"{where}/disabled: the wodle was disabled; its buckets are imported paused")


def _convert_bucket(bucket: ET.Element, where: str, left: list[str]) -> dict[str, Any] | None:
    legacy_name = (bucket.text or "").strip()
    if len(bucket) == 0 and legacy_name and bucket.get("type") is None:
        # Wazuh's legacy form: <bucket>name</bucket>, a CloudTrail bucket.
        return {"bucket": legacy_name}
    kind = bucket.get("type")
    if kind is None:
        raise ConfigError(f'{where}: the bucket has no type attribute (type="cloudtrail")')
    if not kind.strip():
        raise ConfigError(f'{where}: the bucket\'s type is empty (type="cloudtrail")')
    if kind != "cloudtrail":
        left.append(f"{where} type={kind}: only CloudTrail buckets are collected")
        return None
    out: dict[str, Any] = {}
    discard: list[dict[str, str]] = []
    for child in bucket:
        tag, value = child.tag, (child.text or "").strip()
        at = f"{where}/{tag}"
        if tag == "name":
            out["bucket"] = value
        elif tag in _TEXT_OPTIONS:
            out[_TEXT_OPTIONS[tag]] = value
        elif tag in _PREFIX_OPTIONS:
            out[tag] = value
        elif tag in _ENDPOINT_OPTIONS:
            out[tag] = value if re.match(r"^https?://", value) else f"https://{value}"
        elif tag == "aws_account_id":
            out["aws_account_ids"] = _split(value)
        elif tag == "regions":
            out["regions"] = _split(value)
        elif tag == "iam_role_duration":
            if not value.isdigit():
                raise ConfigError(f"{at}: {value!r} is not a number of seconds")
            out["iam_role_duration"] = int(value)
        elif tag == "only_logs_after":
            try:
                out["only_logs_after"] = parse_timestamp(value).date().isoformat()
            except ValueError as exc:
                raise ConfigError(f"{at}: {value!r}: {exc} (Wazuh's form is 2026-NOV-01)") from exc
        elif tag == "discard_regex":
            field = child.get("field", "").strip()
            if field:
                discard.append({"field": field, "regex": value})
            else:
                left.append(f"{at}: no field attribute (TrailWarden matches one field)")
        elif tag in _WODLE_OPTIONS:
            out[tag] = _option(tag, value, at, left)
        elif tag in _SECRETS:
            left.append(f"{at}: {_KEYS_LEFT_BEHIND}")
        else:
            left.append(f"{at}: unknown option")
    if not out.get("bucket"):
        raise ConfigError(f"{where}: the bucket has no <name>")
    if discard:
        out["discard"] = discard
    return out


_SUBSCRIBER_TEXT = {
    "sqs_name": "sqs_name",
    "aws_profile": "aws_profile",
    "iam_role_arn": "iam_role_arn",
    "external_id": "iam_role_external_id",
}


def _convert_subscriber(
    subscriber: ET.Element, where: str, left: list[str]
) -> dict[str, Any] | None:
    """``<subscriber type="buckets">``: S3 notifications through SQS -> ``cloudtrail-sqs``."""
    out: dict[str, Any] = {}
    discard: list[dict[str, str]] = []
    for child in subscriber:
        tag, value = child.tag, (child.text or "").strip()
        at = f"{where}/{tag}"
        if tag in _SUBSCRIBER_TEXT:
            out[_SUBSCRIBER_TEXT[tag]] = value
        elif tag in _ENDPOINT_OPTIONS:
            out[tag] = value if re.match(r"^https?://", value) else f"https://{value}"
        elif tag == "iam_role_duration":
            if value.isdigit():
                out["iam_role_duration"] = int(value)
            else:
                left.append(f"{at}: {value!r} is not a number of seconds")
        elif tag == "discard_regex":
            field = child.get("field", "").strip()
            if field:
                discard.append({"field": field, "regex": value})
            else:
                left.append(f"{at}: no field attribute (TrailWarden matches one field)")
        elif tag in _SECRETS:
            left.append(f"{at}: {_KEYS_LEFT_BEHIND}")
        else:
            left.append(f"{at}: unknown option")
    if not out.get("sqs_name"):
        left.append(f"{where}: no <sqs_name>: skipped")
        return None
    if discard:
        out["discard"] = discard
    return out


def _option(tag: str, value: str, at: str, left: list[str]) -> Any:
    if tag == "interval":
        if value.rstrip().endswith("M"):  # Wazuh's months; our parser would read minutes
            raise ConfigError(f"{at}: {value!r} is in months; TrailWarden intervals go up to weeks")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(
                f"{at}: {value!r} is not a duration TrailWarden reads (s, m, h, d, w)"
            ) from exc
        if seconds <= 0:
            raise ConfigError(f"{at}: {value!r}: the interval must be more than zero")
        return value
    return _yes_no(value, at, left)


def _yes_no(value: str, at: str, left: list[str]) -> bool:
    if value.lower() in ("yes", "true"):
        return True
    if value.lower() in ("no", "false"):
        return False
    raise ConfigError(f"{at}: expected yes or no, got {value!r}")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
