"""Helpers for parsing TOML configuration into frozen dataclasses, once, at the edge.

Every error names the file (or origin) and the dotted key, and unknown keys are refused rather
than silently ignored — a typo in a security tool's config must not turn a check off.
"""

from __future__ import annotations

import builtins
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from trailwarden.common.errors import ConfigError
from trailwarden.common.timeparse import parse_duration

T = TypeVar("T")

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def parse_toml_text(text: str, origin: str) -> dict[str, Any]:
    """``text`` parsed; ConfigError naming ``origin`` if it is not TOML or nests past what the
    parser can follow (tomllib recurses: 100,000 nested arrays raised RecursionError)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(
            f"{origin}: not usable TOML: arrays or tables nested too deeply"
        ) from None


class Section:
    """Typed access to one table of a TOML document, tracking which keys were read."""

    def __init__(self, data: object, origin: builtins.str, where: builtins.str = "") -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{origin}: {where or 'document'}: expected a table")
        self.data: Mapping[str, Any] = data
        self.origin = origin
        self.where = where
        self._used: set[str] = set()

    def _key(self, key: builtins.str) -> builtins.str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: builtins.str, reason: builtins.str) -> ConfigError:
        return ConfigError(f"{self.origin}: {self._key(key)}: {reason}")

    def section(self, key: builtins.str) -> Section:
        self._used.add(key)
        return Section(self.data.get(key, {}), self.origin, self._key(key))

    def raw(self, key: builtins.str, default: Any = None) -> Any:
        self._used.add(key)
        return self.data.get(key, default)

    def str(self, key: builtins.str, default: builtins.str = "") -> builtins.str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type(value).__name__}")
        return value

    def int(
        self,
        key: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def bool(self, key: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def str_list(
        self, key: builtins.str, default: tuple[builtins.str, ...] = ()
    ) -> tuple[builtins.str, ...]:
        value = self.raw(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "expected a list of strings")
        return tuple(value)

    def duration(self, key: builtins.str, default: float | builtins.str) -> float:
        value = self.raw(key, default)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def size(self, key: builtins.str, default: builtins.int | builtins.str) -> builtins.int:
        value = self.raw(key, default)
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def done(self) -> None:
        """Refuse keys nobody read: they are typos or options this version does not have."""
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            raise ConfigError(
                f"{self.origin}: {self.where or 'top level'}: unknown key(s) "
                + ", ".join(repr(k) for k in unknown)
            )


def parse_size(value: object) -> int:
    """``512MB``, ``2GiB``, ``1048576`` → bytes."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative size: {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a size: {value!r}")
    text = value.strip().lower().replace(" ", "")
    number = text.rstrip("kmgtib")
    unit = text[len(number) :]
    if unit not in _SIZE_UNITS or not number:
        raise ValueError(f"not a size: {value!r} (use e.g. 512MB, 2GiB)")
    try:
        return int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, OverflowError):  # OverflowError: 1e999 is infinity
        raise ValueError(f"not a size: {value!r} (use e.g. 512MB, 2GiB)") from None
