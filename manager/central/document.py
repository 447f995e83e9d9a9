"""Central config documents: parsing, validation, and the merge into an agent's effective config.

A *document* is the TOML an admin sets for a group or for one agent. An agent's *effective*
config is its groups' documents merged in the order the agent lists its groups, then its own
document on top:

- top-level values (``log_level``, ``keep_local_sources``) and ``[limits]`` keys: the later
  document wins;
- ``[[sources]]`` are matched by name (``name``, else the parser's default ``cloudtrail:<bucket>``
  / ``directory:<path>``): a later document's table for the same source replaces the keys it sets
  and keeps the others, so an agent override can change only ``regions`` of a group's source;
  ``enabled = false`` pauses a source (it is left out of the effective config; its checkpoints
  stay on the agent, so enabling it again resumes where it stopped).

Group documents must be complete on their own; agent documents may be partial. Whatever the
merge gives is checked with the agent's own parser (``parse_central_config``) before a revision
is accepted, so the manager refuses what an agent would refuse. AWS credentials are refused
anywhere in a document (SecretInConfigError).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trailwarden.common.errors import ConfigError
from trailwarden.common.schema.central import (
    LOG_LEVELS,
    config_hash,
    parse_central_config,
    refuse_secrets,
)
from trailwarden.common.tomlconfig import parse_toml_text
from trailwarden.manager.central.toml_text import render_toml

TOP_LEVEL_KEYS = ("log_level", "keep_local_sources", "limits", "sources")
ENABLED_KEY = "enabled"
"""Central-only source key: ``enabled = false`` pauses the source."""
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class EffectiveConfig:
    """What one agent should run: the merged TOML and its hash ('' / '' when nothing applies)."""

    toml: str
    hash: str

    @property
    def empty(self) -> bool:
        return not self.toml


NO_CONFIG = EffectiveConfig("", "")


def check_group_name(group: str) -> str:
    if not _TARGET_NAME.match(group or ""):
        raise ConfigError(
            f"group name {group!r} is not valid (letters, digits, '.', '_', '-'; at most 64)"
        )
    return group


def source_name(table: Mapping[str, Any], where: str) -> str:
    """The name a ``[[sources]]`` table is matched by (the parser's default when unnamed)."""
    name = table.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    kind = table.get("type")
    if kind == "cloudtrail" and isinstance(table.get("bucket"), str) and table["bucket"].strip():
        return f"cloudtrail:{table['bucket'].strip()}"
    if kind == "directory" and isinstance(table.get("path"), str) and table["path"].strip():
        return f"directory:{table['path'].strip()}"
    raise ConfigError(f"{where}: needs a name (or type and bucket/path) to say which source it is")


MAX_DOCUMENT_BYTES = 1024 * 1024
"""The largest central config document accepted (UTF-8 bytes). A real one is a few KB; the cap
keeps every revision, and a page of history, far below the Admin API's message limit."""
MAX_NESTING = 32
"""Tables and arrays nested deeper than this are refused (central config needs about four)."""


def parse_document(text: str, origin: str) -> dict[str, Any]:
    """A document's data after the checks that need no merge: size, TOML, nesting, keys,
    secrets, shapes."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_DOCUMENT_BYTES:
        raise ConfigError(
            f"{origin}: config_toml is {size} bytes; a central config document may hold at "
            f"most {MAX_DOCUMENT_BYTES} bytes (1 MiB)"
        )
    data = parse_toml_text(text, f"{origin}: config_toml")
    if nesting_depth(data) > MAX_NESTING:
        raise ConfigError(
            f"{origin}: config_toml nests tables/arrays more than {MAX_NESTING} levels deep"
        )
    refuse_secrets(data, origin)
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(central config has {', '.join(TOP_LEVEL_KEYS)})"
        )
    level = data.get("log_level")
    if level is not None and (not isinstance(level, str) or level.upper() not in LOG_LEVELS):
        raise ConfigError(f"{origin}: log_level: expected one of {', '.join(LOG_LEVELS)}")
    if "limits" in data and not isinstance(data["limits"], Mapping):
        raise ConfigError(f"{origin}: limits: expected a table ([limits])")
    sources = data.get("sources", [])
    if not isinstance(sources, list):
        raise ConfigError(f"{origin}: sources: expected a list of tables ([[sources]])")
    seen: dict[str, int] = {}
    for index, table in enumerate(sources):
        where = f"{origin}: sources[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: expected a table")
        name = source_name(table, where)
        if name in seen:
            raise ConfigError(f"{where}: {name!r} is already the name of sources[{seen[name]}]")
        seen[name] = index
        if not isinstance(table.get(ENABLED_KEY, True), bool):
            raise ConfigError(f"{where}.{ENABLED_KEY}: expected true or false")
    return data


def nesting_depth(value: Any, stop: int = MAX_NESTING + 1) -> int:
    """How deeply tables and arrays nest in ``value`` (a scalar is 0), counted without
    recursion and giving up at ``stop``."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest >= stop:
            return deepest
        pending.extend((child, depth) for child in children)
    return deepest


def validate_complete(data: Mapping[str, Any], origin: str) -> EffectiveConfig:
    """Check a document that must stand alone (a group's) as an agent would; its rendering."""
    return effective_config([data], origin)


def merge(
    documents: Sequence[Mapping[str, Any]], *, include_paused: bool = False
) -> dict[str, Any]:
    """Merge documents (earliest first) as described in the module docstring.

    ``include_paused``: keep the ``enabled = false`` sources too (without that key), to check
    them: a paused source is validated like a running one, so enabling it later cannot fail."""
    merged: dict[str, Any] = {}
    sources: dict[str, dict[str, Any]] = {}
    for document in documents:
        for key, value in document.items():
            if key == "sources":
                for index, table in enumerate(value):
                    name = source_name(table, f"sources[{index}]")
                    sources.setdefault(name, {}).update(copy.deepcopy(dict(table)))
            elif key == "limits":
                merged.setdefault("limits", {}).update(value)
            else:
                merged[key] = value
    active = [
        {k: v for k, v in table.items() if k != ENABLED_KEY}
        for table in sources.values()
        if include_paused or table.get(ENABLED_KEY, True)
    ]
    if sources:
        merged["sources"] = active
    return merged


def effective_config(documents: Sequence[Mapping[str, Any]], origin: str) -> EffectiveConfig:
    """Merge, render and check with the agent's parser; ConfigError names ``origin``."""
    present = [d for d in documents if d]
    if not present:
        return NO_CONFIG
    merged = merge(present)
    everything = merge(present, include_paused=True)
    if everything != merged:
        paused = sorted(
            source_name(t, origin) for t in everything["sources"] if t not in merged["sources"]
        )
        try:
            parse_central_config(render_toml(everything), origin)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc} (paused sources are checked too: {', '.join(paused)})"
            ) from exc
    text = render_toml(merged)
    if not text:
        return NO_CONFIG
    parse_central_config(text, origin)
    return EffectiveConfig(text, config_hash(text))
