"""What AWS accepts as a region and as an S3 bucket name, for the sources schema.

Regions come from botocore's endpoint data (``endpoints.json``, every partition: ``aws``,
``aws-cn``, ``aws-us-gov``, the ISO ones), which the agent already installs with boto3: the
list a region is checked against is the list botocore itself would route to, updated with it.
Only that data file is read; nothing here talks to AWS.

Bucket names follow S3's general-purpose bucket naming rules
(docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html): 3-63 characters of
lower-case letters, digits, ``.`` and ``-``; a letter or digit first and last; no ``..``; not an
IPv4 address; none of the reserved prefixes (``xn--``, ``sthree-``, ``amzn-s3-demo-``) or
suffixes (``-s3alias``, ``--ol-s3``, ``.mrap``, ``--x-s3``, ``--table-s3``).
"""

from __future__ import annotations

import re
from functools import cache

import botocore.loaders

_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


@cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in botocore's endpoint data."""
    data = botocore.loaders.create_loader().load_data("endpoints")
    regions: set[str] = set()
    for partition in data.get("partitions", []):
        regions.update(partition.get("regions", {}))
    return frozenset(regions)


def region_problem(region: str) -> str:
    """Why ``region`` is not an AWS region ('' when it is one)."""
    known = known_regions()
    if region in known:
        return ""
    return f"{region!r} is not an AWS region (valid: {', '.join(sorted(known))})"


def bucket_name_problem(name: str) -> str:
    """Why ``name`` breaks S3's bucket naming rules ('' when it follows them)."""
    if not 3 <= len(name) <= 63:
        return f"{name!r} is not a valid S3 bucket name: it must be 3 to 63 characters long"
    if not _BUCKET_CHARACTERS.match(name):
        return (
            f"{name!r} is not a valid S3 bucket name: only lower-case letters, digits, '.' and "
            "'-', beginning and ending with a letter or digit"
        )
    if ".." in name:
        return f"{name!r} is not a valid S3 bucket name: two periods side by side"
    if _IPV4.match(name):
        return f"{name!r} is not a valid S3 bucket name: formatted as an IP address"
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"{name!r} is not a valid S3 bucket name: the prefix {prefix!r} is reserved"
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"{name!r} is not a valid S3 bucket name: the suffix {suffix!r} is reserved"
    return ""
