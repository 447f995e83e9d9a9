"""CloudTrail's S3 key layout.

``{path}AWSLogs/{path_suffix}[{org}/]{account}/CloudTrail/{region}/YYYY/MM/DD/{name}.json.gz``,
where the file name is ``{account}_CloudTrail_{region}_{YYYYMMDDTHHMMZ}_{random}.json.gz``.
Digest files live beside it under ``CloudTrail-Digest/`` and Insights under
``CloudTrail-Insight/``; neither is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

ACCOUNT_ID = re.compile(r"^\d{12}$")
ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
LOG_SUFFIXES = (".json.gz", ".json")
_DAY = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/([^/]+)$")
_FILE_TIME = re.compile(r"_(\d{8}T\d{4})Z_[^/]*$")


@dataclass(frozen=True, slots=True)
class Stream:
    """One account + region folder of a trail: the unit of checkpointing."""

    account: str
    region: str
    prefix: str
    """``...{account}/CloudTrail/{region}/``."""
    organization_id: str = ""


def logs_root(path: str, path_suffix: str) -> str:
    """``{path}AWSLogs/{path_suffix}``: where accounts (or organizations) are listed."""
    return f"{path}AWSLogs/{path_suffix}"


def account_prefix(root: str, organization_id: str, account: str) -> str:
    org = f"{organization_id}/" if organization_id else ""
    return f"{root}{org}{account}/CloudTrail/"


def stream_prefix(root: str, organization_id: str, account: str, region: str) -> str:
    return f"{account_prefix(root, organization_id, account)}{region}/"


def child(parent: str, common_prefix: str) -> str:
    """The folder name of a common prefix under ``parent`` (``parent/NAME/`` -> ``NAME``)."""
    return common_prefix[len(parent) :].rstrip("/")


def day_folder(day: date) -> str:
    return f"{day:%Y/%m/%d}/"


def parse_day_folder(text: str) -> date:
    """``YYYY/MM/DD`` (trailing slash optional) back to a date."""
    year, month, day = text.strip("/").split("/")
    return date(int(year), int(month), int(day))


def key_day(prefix: str, key: str) -> date | None:
    """The date folder of a log object key under its stream prefix; None when not a log key."""
    if not key.startswith(prefix):
        return None
    match = _DAY.match(key[len(prefix) :])
    if not match or not match.group(4).endswith(LOG_SUFFIXES):
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def key_time_ms(key: str) -> int:
    """The delivery time in a log file's name (``..._20261120T1000Z_...``), as Unix ms; 0 when
    the name carries none (the time is CloudTrail's, so no clock of ours is involved)."""
    match = _FILE_TIME.search(key)
    if not match:
        return 0
    try:
        when = datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)
    except ValueError:
        return 0
    return int(when.timestamp() * 1000)
