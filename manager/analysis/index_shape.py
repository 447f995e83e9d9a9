"""The ``data`` of an alert document, shaped so that every alert indexes under Wazuh's template.

A Wazuh indexer maps the fields its template does not name by the first document that carries
them (strings as ``keyword``, booleans as ``boolean``, numbers as ``long``, objects as
``object``) and then refuses every document whose field has another shape. CloudTrail's API
payloads break that: the same key holds a string in one AWS API and an object in another
(``responseElements.role`` is an ARN from Lambda and a role object from IAM), a boolean in one
and a string in another (``tagSet.item.value``), a number or text (``responseElements.version``
is ``1`` or ``"$LATEST"``). Wazuh's wodle patches a few such keys by name and loses the
documents of the others.

The rule applied here is general and applies to the four API payload fields,
``PAYLOAD_FIELDS``, only (the CloudTrail envelope around them has one schema for every API,
so it is left exactly as AWS wrote it):

1. every scalar inside a payload is written as text (``true``/``false``, numbers as their JSON
   text): no payload field can be mapped as a number or a boolean, so none can refuse a string;
2. every scalar inside a payload is wrapped as ``{"value": <text>}`` (a list of scalars as
   ``{"value": [<text>, ...]}``), except a scalar that already sits under a key named
   ``value`` (AWS's own wrapper, ``{"disableApiTermination": {"value": false}}``, and Wazuh's):
   a payload key is then always an object, whether an API gave it a value or an object, so
   no payload field can be an object in one document and a value in another. Wazuh's own wrap
   of ``disableApiTermination`` comes out of this rule unchanged (``{"value": "false"}``);
3. a payload that is not an object at all keeps Wazuh's ``{"string": <text>}`` wrap.

Outside the payloads Wazuh's other conventions apply: ``tags`` that are not an object become
``{"value": tags}``, and ``source_ip_address`` (mapped ``ip`` by the template) is a copy of
``sourceIPAddress`` when that is an IPv4 address (a service name such as
``ec2.amazonaws.com`` is not copied). The alert's ``data`` never repeats the agent (it is the
document's ``agent``). Only the document changes: the rules see the event as decoded, and the
store keeps the raw record.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

import orjson

PAYLOAD_FIELDS = (
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "serviceEventData",
)
"""CloudTrail fields whose content is the called API's own request, response or details."""

WRAPPER = "value"
"""The key a payload scalar is wrapped under (AWS's and Wazuh's own choice)."""

MAX_DEPTH = 64

_IPV4_SHAPE = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


def index_data(event: Mapping[str, Any]) -> dict[str, Any]:
    """The document's ``data`` for a decoded event (``integration``, ``aws``, ``agent``)."""
    data = {key: value for key, value in event.items() if key != "agent"}
    aws = data.get("aws")
    if not isinstance(aws, Mapping):
        return data
    shaped = dict(aws)
    for key in PAYLOAD_FIELDS:
        payload = shaped.get(key)
        if payload is None:
            continue
        if isinstance(payload, Mapping):
            if set(payload) == {"string"} and not isinstance(payload["string"], Mapping):
                shaped[key] = {"string": _text(payload["string"])}
            else:
                shaped[key] = _shape_object(payload, 1)
        else:
            shaped[key] = {"string": _text(payload)}
    tags = shaped.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        shaped["tags"] = {WRAPPER: tags}
    address = shaped.get("sourceIPAddress")
    if isinstance(address, str) and _is_ipv4(address):
        shaped["source_ip_address"] = address
    data["aws"] = shaped
    return data


def _shape_object(node: Mapping[str, Any], depth: int) -> dict[str, Any]:
    # type() rather than isinstance against the Mapping ABC: this walk runs over every payload
    # of every alert, and decoded events hold plain dicts and lists only.
    out: dict[str, Any] = {}
    deeper = depth + 1
    for key, value in node.items():
        kind = type(value)
        if kind is str:
            out[key] = value if key == WRAPPER else {WRAPPER: value}
        elif kind is dict:
            out[key] = _shape_object(value, deeper) if deeper <= MAX_DEPTH else _text(value)
        elif value is not None:
            out[key] = _shape_value(key, value, deeper)
    return out


def _shape_value(key: str, value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return _text(value)
    if isinstance(value, Mapping):
        return _shape_object(value, depth)
    if type(value) is list:
        items = _flatten(value)
        if not any(isinstance(item, Mapping) for item in items):
            texts = [_text(item) for item in items]
            return texts if key == WRAPPER else {WRAPPER: texts}
        # Objects and values side by side: each value wrapped, so the array holds objects only.
        return [
            _shape_object(item, depth) if isinstance(item, Mapping) else {WRAPPER: _text(item)}
            for item in items
        ]
    text = _text(value)
    return text if key == WRAPPER else {WRAPPER: text}


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if type(value) is list:
            out.extend(_flatten(value))
        elif value is not None:
            out.append(value)
    return out


def _text(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _is_ipv4(text: str) -> bool:
    # A cheap shape test first: most sourceIPAddress values are addresses or service names.
    if not _IPV4_SHAPE.match(text):
        return False
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
