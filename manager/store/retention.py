"""Retention: how long alerts, archived raw events and dedupe keys are kept, and a size cap.

``manager.toml``::

    [retention]
    alerts_days = 90          # 0 = keep forever
    archive_days = 30
    dedupe_days = 30
    max_db_size = "10GB"      # or max_db_bytes = 10737418240; 0 = no cap
    interval = "1h"           # how often the manager prunes

The store applies the policy in ``prune()``: first by age, then — if the database still uses
more than the cap — the oldest alerts and archived events go until it fits. SQLite reuses the
pages freed, so the file stops growing at about the cap (it does not shrink without VACUUM).
``retention_loop`` runs ``prune`` on a timer in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from trailwarden.common.errors import ConfigError, StoreError
from trailwarden.common.timeparse import parse_duration
from trailwarden.common.tomlconfig import parse_size as common_parse_size

if TYPE_CHECKING:
    from trailwarden.manager.store.base import AlertStore

log = logging.getLogger(__name__)

DEFAULT_ALERTS_DAYS = 90
DEFAULT_ARCHIVE_DAYS = 30
DEFAULT_DEDUPE_DAYS = 30
DEFAULT_MAX_DB_BYTES = 10 * 1024**3
DEFAULT_INTERVAL_SECONDS = 3600.0
SIZE_CAP_HEADROOM = 0.05
"""When over the cap, prune this much extra so the next pass is not immediately due again."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long the store keeps things and how large its database may grow."""

    alerts_days: int = DEFAULT_ALERTS_DAYS
    """Alerts older than this (by alert timestamp) are deleted; 0 keeps them forever."""
    archive_days: int = DEFAULT_ARCHIVE_DAYS
    """Archived raw events older than this (by arrival) are deleted; 0 keeps them forever."""
    dedupe_days: int = DEFAULT_DEDUPE_DAYS
    """Seen-event keys older than this (by arrival) are forgotten; 0 keeps them forever.
    A resend older than this is still caught for events that raised alerts (the alerts table
    refuses a second alert for the same event and rule while the alert is kept)."""
    max_db_bytes: int = DEFAULT_MAX_DB_BYTES
    """Database size cap in bytes (pages in use); 0 = no cap."""
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    """How often ``retention_loop`` prunes."""

    def __post_init__(self) -> None:
        for name in ("alerts_days", "archive_days", "dedupe_days", "max_db_bytes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"retention: {name} must not be negative")
        if self.interval_seconds <= 0:
            raise ConfigError("retention: interval must be positive")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "[retention]") -> RetentionPolicy:
        """From a ``[retention]`` table; ``origin`` (e.g. ``manager.toml [retention]``) is named
        in errors. Unknown keys are refused."""
        known = {f.name for f in fields(cls)} | {"max_db_size", "interval"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{origin}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name in ("alerts_days", "archive_days", "dedupe_days"):
            if name in data:
                values[name] = _non_negative_int(data[name], f"{origin}.{name}")
        if "max_db_size" in data and "max_db_bytes" in data:
            raise ConfigError(f"{origin}: give max_db_size or max_db_bytes, not both")
        if "max_db_bytes" in data:
            values["max_db_bytes"] = _non_negative_int(
                data["max_db_bytes"], f"{origin}.max_db_bytes"
            )
        if "max_db_size" in data:
            values["max_db_bytes"] = parse_size(data["max_db_size"], f"{origin}.max_db_size")
        if "interval" in data and "interval_seconds" in data:
            raise ConfigError(f"{origin}: give interval or interval_seconds, not both")
        for key in ("interval", "interval_seconds"):
            if key in data:
                try:
                    values["interval_seconds"] = parse_duration(data[key])
                except ValueError as exc:
                    raise ConfigError(f"{origin}.{key}: {exc}") from None
        return cls(**values)

    def cutoffs(self, now: datetime) -> tuple[datetime | None, datetime | None, datetime | None]:
        """``(alerts, archive, dedupe)``: rows older than these go; None = keep forever."""

        def cut(days: int) -> datetime | None:
            return now - timedelta(days=days) if days else None

        return cut(self.alerts_days), cut(self.archive_days), cut(self.dedupe_days)


def enforce_size_cap(
    cap: int,
    bytes_in_use: Callable[[], int],
    counts: Callable[[], dict[str, int]],
    delete_oldest: Callable[[str, int], int],
) -> tuple[dict[str, int], list[str]]:
    """Delete the oldest alerts and archived events until ``bytes_in_use()`` fits ``cap``
    (0 = no cap): ``(removed per table, notes)``. Each pass removes the share of rows the
    excess is (plus ``SIZE_CAP_HEADROOM``), from both tables; a few passes converge."""
    removed = {"alerts": 0, "archive": 0}
    notes: list[str] = []
    if not cap:
        return removed, notes
    for _ in range(8):
        used = bytes_in_use()
        if used <= cap:
            break
        share = min(1.0, (used - cap) / used + SIZE_CAP_HEADROOM)
        rows = counts()
        if not rows["alerts"] and not rows["archive"]:
            notes.append(f"size cap {cap} bytes exceeded ({used}) by non-alert data")
            break
        for table in ("alerts", "archive"):
            removed[table] += delete_oldest(table, math.ceil(rows[table] * share))
    if removed["alerts"] or removed["archive"]:
        notes.append(f"size cap {cap} bytes reached: oldest rows removed")
        log.warning(
            "stage=store store over its size cap (%d bytes): removed the oldest "
            "%d alert(s) and %d archived event(s)",
            cap,
            removed["alerts"],
            removed["archive"],
        )
    return removed, notes


def parse_size(value: Any, where: str) -> int:
    """Bytes from ``1048576``, ``"500MB"``, ``"10GiB"`` (the project's one size syntax: KB/MB/GB
    are powers of 1000, KiB/MiB/GiB powers of 1024); ConfigError naming ``where`` if bad."""
    try:
        return common_parse_size(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _non_negative_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: must be a non-negative integer, not {value!r}")
    return value


async def retention_loop(store: AlertStore, interval_seconds: float) -> None:
    """Prune now and then every ``interval_seconds`` until cancelled.

    A failing pass (database busy) is logged and retried at the next tick: retention is never a
    reason to stop the manager.
    """
    while True:
        try:
            result = await asyncio.to_thread(store.prune)
        except StoreError as exc:
            log.warning(
                "stage=store retention pass failed, retrying in %.0fs: %s", interval_seconds, exc
            )
        else:
            if result.total or result.notes:
                log.info(
                    "stage=store retention removed alerts=%d archive=%d dedupe=%d "
                    "(size cap: alerts=%d archive=%d) bytes_in_use=%d %s",
                    result.alerts_by_age,
                    result.archive_by_age,
                    result.dedupe_by_age,
                    result.alerts_by_size,
                    result.archive_by_size,
                    result.bytes_in_use,
                    "; ".join(result.notes),
                )
        await asyncio.sleep(interval_seconds)
