"""A model of how a Wazuh indexer (OpenSearch) takes alerts.json lines, written from Wazuh
4.14.9's own index template and Filebeat alerts pipeline (``tests/files/wazuh-index``).

``WazuhIndex.index(document)`` does what Filebeat's Wazuh module and the indexer do to one
alerts.json line: the pipeline's ``set`` processors (``data.aws.region``,
``data.aws.accountId``) and its ``date`` processor on ``timestamp`` (which must be ISO 8601,
``ignore_failure: false``), then mapping. Fields the template maps are checked against their
type; every other field is mapped dynamically by the first document that carries it, as the
indexer does (``string_as_keyword``: strings become ``keyword``; numbers ``long``/``float``;
booleans ``boolean``; objects ``object``; ``date_detection: false``), and later documents must
fit that mapping. What the indexer refuses here is what it refuses for real: an object where a
scalar is mapped or a scalar where an object is, a non-numeric string in a number, a string
other than true/false in a boolean, a bad IP or date, arrays mixing objects and scalars, fields
nested deeper than ``index.mapping.depth.limit`` (20), more fields than
``index.mapping.total_fields.limit``. Keys holding dots are expanded into object paths, as the
indexer does. A refused document is returned with its reasons and changes no mapping.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INDEX_FILES = Path(__file__).resolve().parents[2] / "files" / "wazuh-index"
DEPTH_LIMIT = 20
_DATE_OPTIONAL_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_OBJECT = "object"


def load_template() -> dict[str, Any]:
    with gzip.open(INDEX_FILES / "wazuh-template.json.gz", "rt", encoding="utf-8") as handle:
        template: dict[str, Any] = json.load(handle)
    return template


def load_pipeline() -> dict[str, Any]:
    pipeline: dict[str, Any] = json.loads((INDEX_FILES / "alerts-pipeline.json").read_text())
    return pipeline


@dataclass
class Verdict:
    indexed: bool
    reasons: list[str] = field(default_factory=list)


def _flatten_mappings(properties: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out[path] = _OBJECT
            _flatten_mappings(spec["properties"], path + ".", out)
        else:
            out[path] = spec.get("type", _OBJECT)


class WazuhIndex:
    """One ``wazuh-alerts-*`` index: its template's mappings plus what documents added."""

    def __init__(self) -> None:
        template = load_template()
        mappings = template["mappings"]
        dynamic = mappings["dynamic_templates"]
        if (
            dynamic
            != [
                {
                    "string_as_keyword": {
                        "mapping": {"type": "keyword"},
                        "match_mapping_type": "string",
                    }
                }
            ]
            or mappings.get("date_detection") is not False
        ):
            raise AssertionError("the template's dynamic mapping is not the one modelled here")
        self.field_limit = int(template["settings"]["index.mapping.total_fields.limit"])
        self.mapped: dict[str, str] = {}
        _flatten_mappings(mappings["properties"], "", self.mapped)
        self.template_paths = frozenset(self.mapped)
        self.sets = [
            p["set"] for p in load_pipeline()["processors"] if "set" in p and "value" in p["set"]
        ]
        self.documents = 0

    # -- the pipeline --------------------------------------------------------------------------

    def _pipeline(self, doc: dict[str, Any], reasons: list[str]) -> None:
        for rule in self.sets:
            target = rule["field"].split(".")
            source = re.fullmatch(r"\{\{([^}]+)\}\}", rule["value"])
            if source is None:
                continue
            value = _get(doc, source.group(1).split("."))
            if value in (None, "") or (_get(doc, target) is not None and not rule["override"]):
                continue
            node = doc
            for part in target[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    return
            node[target[-1]] = value if isinstance(value, str) else json.dumps(value)
        stamp = doc.get("timestamp")
        if not isinstance(stamp, str) or not _DATE_OPTIONAL_TIME.match(stamp):
            reasons.append(f"timestamp {stamp!r}: the pipeline's ISO8601 date processor fails")

    # -- mapping -------------------------------------------------------------------------------

    def index(self, document: dict[str, Any]) -> Verdict:
        """Index one alerts.json document (a parsed line); the verdict says why if refused."""
        doc = json.loads(json.dumps(document))
        reasons: list[str] = []
        self._pipeline(doc, reasons)
        leaves: list[tuple[str, Any, int]] = []
        _walk(doc, "", 0, leaves, reasons)
        added: dict[str, str] = {}
        for path, value, depth in leaves:
            if depth > DEPTH_LIMIT:
                reasons.append(f"{path}: nested {depth} deep, over the depth limit {DEPTH_LIMIT}")
                continue
            self._check_parents(path, added, reasons)
            kind = self.mapped.get(path) or added.get(path)
            if kind is None:
                added[path] = _dynamic_kind(value)
                continue
            problem = _refusal(kind, value)
            if problem:
                origin = "template" if path in self.template_paths else "dynamic mapping"
                reasons.append(f"{path}: {problem} (mapped {kind} by the {origin})")
        if len(self.mapped) + len(added) > self.field_limit:
            reasons.append(f"more than {self.field_limit} fields in the index")
        if reasons:
            return Verdict(False, reasons)
        self.mapped.update(added)
        self.documents += 1
        return Verdict(True)

    def _check_parents(self, path: str, added: dict[str, str], reasons: list[str]) -> None:
        parts = path.split(".")
        for end in range(1, len(parts)):
            parent = ".".join(parts[:end])
            kind = self.mapped.get(parent) or added.get(parent)
            if kind is None:
                added[parent] = _OBJECT
            elif kind != _OBJECT:
                reasons.append(f"{path}: an object under {parent}, which is mapped {kind}")
                return


def _get(doc: Any, path: list[str]) -> Any:
    node = doc
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _walk(
    value: Any, path: str, depth: int, out: list[tuple[str, Any, int]], reasons: list[str]
) -> None:
    """Leaves as (dotted path, value, depth); an object leaf is ("path", {}) when empty."""
    if isinstance(value, dict):
        if path and not value:
            out.append((path, {}, depth))
        for key, item in value.items():
            if not key.strip() or key.startswith(".") or key.endswith(".") or ".." in key:
                reasons.append(f"{path}.{key!r}: a field name the indexer refuses")
                continue
            child = f"{path}.{key}" if path else key
            _walk(item, child, depth + key.count(".") + 1, out, reasons)
    elif isinstance(value, list):
        kinds = {
            "object" if isinstance(v, dict) else "scalar" for v in _flat(value) if v is not None
        }
        if len(kinds) > 1:
            reasons.append(f"{path}: an array mixing objects and values")
            return
        for item in _flat(value):
            _walk(item, path, depth, out, reasons)
    elif value is not None:
        out.append((path, value, depth))


def _flat(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.extend(_flat(value) if isinstance(value, list) else [value])
    return out


def _dynamic_kind(value: Any) -> str:
    if isinstance(value, dict):
        return _OBJECT
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    return "keyword"


def _refusal(kind: str, value: Any) -> str:
    """Why a field of ``kind`` refuses ``value`` (empty when it takes it, with coercion)."""
    if kind == _OBJECT:
        return "" if isinstance(value, dict) else f"a value ({_kind(value)}) where an object is"
    if isinstance(value, dict):
        return "an object where a value is"
    if kind in ("keyword", "text", "wildcard", "match_only_text"):
        return ""
    if kind in (
        "long",
        "integer",
        "short",
        "byte",
        "float",
        "double",
        "half_float",
        "scaled_float",
    ):
        if isinstance(value, bool):
            return "a boolean in a number"
        if isinstance(value, int | float) or (isinstance(value, str) and _NUMERIC.match(value)):
            return ""
        return f"{value!r} is not a number"
    if kind == "boolean":
        if isinstance(value, bool) or value in ("true", "false", ""):
            return ""
        return f"{value!r} is not a boolean"
    if kind == "ip":
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            return f"{value!r} is not an IP address"
        return ""
    if kind == "date":
        if isinstance(value, int) or (isinstance(value, str) and _DATE_OPTIONAL_TIME.match(value)):
            return ""
        return f"{value!r} is not a date"
    if kind == "geo_point":
        return ""
    return f"unknown mapping type {kind!r}"


def _kind(value: Any) -> str:
    return type(value).__name__
