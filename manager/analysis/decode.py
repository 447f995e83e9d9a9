"""Decode: a CloudTrail record becomes a Wazuh-shaped event.

The event follows the envelope Wazuh's AWS integration produces, so rules written for Wazuh
work unchanged::

    {"integration": "aws",
     "aws": {<every CloudTrail field>, "source": "cloudtrail",
             "log_info": {"s3bucket": ..., "log_file": ..., "aws_account_alias": ...},
             "aws_account_id": ...},
     "agent": {"id": ..., "name": ...}}

Wazuh's conventions applied to the record (recursively): ``null`` fields are dropped, a list
holding exactly one element is replaced by that element, and ``requestParameters``,
``responseElements`` and ``additionalEventData`` that are not objects are wrapped as
``{"string": value}``.

Speed matters here (every record passes through): the normaliser copies a container only when
something inside it changes, so the common record costs one walk and a handful of small dicts.
Parts of the caller's record may therefore be shared by the event; neither side mutates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trailwarden.common.errors import DecodeError
from trailwarden.common.model import AgentRef, SourceMeta

WRAPPED_FIELDS = ("requestParameters", "responseElements", "additionalEventData")
"""Top-level CloudTrail fields Wazuh wraps as ``{"string": value}`` when they are not objects."""

_WRAPPED = frozenset(WRAPPED_FIELDS)

MAX_DEPTH = 64
"""Deeper nesting than this is kept as is (not normalised): no real record comes close."""


def decode_record(
    record: Mapping[str, Any],
    source: SourceMeta,
    agent: AgentRef,
    *,
    raw: bytes | None = None,
) -> dict[str, Any]:
    """The Wazuh-shaped event for one CloudTrail record; DecodeError if it is not an object.

    ``raw``, the record's exact JSON bytes when the caller has them, lets decoding skip the
    nested walk for records that provably need none: no ``[`` means no list anywhere, and no
    ``null`` beyond the top-level ones means no nested null. (A ``null`` or ``[`` inside a
    string only costs the walk, never a wrong result.)
    """
    if not isinstance(record, Mapping):
        raise DecodeError(
            f"[{source.location or source.source}] record is {type(record).__name__}, "
            "not a JSON object"
        )
    if raw is not None and b"[" not in raw:
        shallow = {k: v for k, v in record.items() if v is not None}
        if raw.count(b"null") == len(record) - len(shallow):
            return _envelope(shallow, record, source, agent, wrap=True)
    aws: dict[str, Any] = {}
    wrapped = _WRAPPED
    for key, value in record.items():
        if value is None:
            continue
        kind = type(value)
        if kind is dict:
            value = _normalise(value, 1)
        elif kind is list:
            value = _normalise(value, 1)
            if value is None:
                continue
            if key in wrapped:
                value = {"string": value}
        elif key in wrapped:
            value = {"string": value}
        aws[key] = value
    return _envelope(aws, record, source, agent, wrap=False)


def _envelope(
    aws: dict[str, Any],
    record: Mapping[str, Any],
    source: SourceMeta,
    agent: AgentRef,
    *,
    wrap: bool,
) -> dict[str, Any]:
    if wrap:
        for key in WRAPPED_FIELDS:
            value = aws.get(key)
            if value is not None and type(value) is not dict:
                aws[key] = {"string": value}
    aws["source"] = "cloudtrail"
    aws["log_info"] = _log_info(source)
    # The account of the object's key, as Wazuh's wodle writes it (AWSLogs/<account>/...): the
    # account whose trail delivered the record; recipientAccountId stays beside it as AWS wrote
    # it. A record read from a plain directory has no key account: recipientAccountId then.
    account = str(source.account_id or record.get("recipientAccountId") or "")
    if account:
        aws["aws_account_id"] = account
    return {
        "integration": "aws",
        "aws": aws,
        "agent": {"id": agent.id, "name": agent.name},
    }


def _log_info(source: SourceMeta) -> dict[str, str]:
    info = {"s3bucket": source.bucket, "log_file": source.key}
    if source.account_alias:
        info["aws_account_alias"] = source.account_alias
    return info


def _normalise(value: Any, depth: int) -> Any:
    """``value`` without nulls and with one-element lists unwrapped; copies only on change."""
    if depth > MAX_DEPTH:
        return value
    kind = type(value)
    if kind is dict:
        changed: dict[str, Any] | None = None
        for key, item in value.items():
            if item is None:
                new: Any = None
            else:
                item_kind = type(item)
                if item_kind is not dict and item_kind is not list:
                    continue
                new = _normalise(item, depth + 1)
                if new is item:
                    continue
            if changed is None:
                changed = {}
            changed[key] = new
        if changed is None:
            return value
        out_dict: dict[str, Any] = {}
        for key, item in value.items():
            if key in changed:
                item = changed[key]
                if item is None:
                    continue
            out_dict[key] = item
        return out_dict
    if kind is list:
        if len(value) == 1:
            return _normalise(value[0], depth + 1)
        out: list[Any] | None = None
        for index, item in enumerate(value):
            item_kind = type(item)
            if item_kind is dict or item_kind is list:
                new = _normalise(item, depth + 1)
                if new is not item:
                    if out is None:
                        out = list(value)
                    out[index] = new
        return value if out is None else out
    return value
