"""Build a whole trail: scenarios spread over accounts, regions and time, buried in noise.

Deterministic: the same arguments and seed give the same records, byte for byte. Each scenario
draws from its own seeded random source, so its records do not change when ``events`` does.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from trailwarden.common.generator.catalogue import SCENARIOS, resolve
from trailwarden.common.generator.identity import Account
from trailwarden.common.generator.noise import background_call
from trailwarden.common.generator.records import Scene

DEFAULT_ACCOUNTS = ("111111111111", "222222222222")
DEFAULT_REGIONS = ("us-east-1", "eu-west-1")
DEFAULT_DURATION_SECONDS = 3600.0
"""The span of eventTime the generated trail covers."""
WINDOW_SECONDS = 300
"""CloudTrail delivers a log file roughly every five minutes per account and region."""


def default_start(duration: float = DEFAULT_DURATION_SECONDS) -> datetime:
    """A start that ends the trail at the last whole five minutes before now."""
    now = datetime.now(UTC).replace(microsecond=0)
    floored = now - timedelta(seconds=now.timestamp() % WINDOW_SECONDS)
    return floored - timedelta(seconds=duration)


def generate_records(
    accounts: Sequence[str] = DEFAULT_ACCOUNTS,
    regions: Sequence[str] = DEFAULT_REGIONS,
    events: int = 1000,
    scenarios: str | Iterable[str] = "all",
    seed: int = 0,
    start: datetime | None = None,
    duration: float = DEFAULT_DURATION_SECONDS,
) -> list[dict[str, Any]]:
    """CloudTrail records, sorted by eventTime.

    Every named scenario is played once (scenario ``i`` in account ``i mod len(accounts)``, in
    the regions in turn, at the start of an evenly spaced five-minute window so that bursts stay
    within one log file); read-only background calls then fill the trail up to ``events``
    records. When the scenarios alone hold more than ``events`` records, all of them are kept.
    """
    accounts = _checked_accounts(accounts)
    if not regions:
        raise ValueError("at least one region is needed")
    if events < 0:
        raise ValueError(f"events must be >= 0, not {events}")
    if duration < WINDOW_SECONDS:
        raise ValueError(f"duration must be at least {WINDOW_SECONDS} seconds")
    names = resolve(scenarios)
    start = (start or default_start(duration)).astimezone(UTC)
    identities = {
        account: Account(account, random.Random(f"{seed}:account:{account}"))
        for account in accounts
    }
    region_tuple = tuple(regions)
    windows = max(1, int(duration // WINDOW_SECONDS))
    records: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        rng = random.Random(f"{seed}:scenario:{index}:{name}")
        window = (index * windows) // max(1, len(names))
        moment = start + timedelta(seconds=window * WINDOW_SECONDS + rng.uniform(5, 40))
        scene = Scene(
            rng=rng,
            account=identities[accounts[index % len(accounts)]],
            region=region_tuple[(index // len(accounts)) % len(region_tuple)],
            regions=region_tuple,
            time=moment,
        )
        records.extend(SCENARIOS[name].build(scene))
    noise_rng = random.Random(f"{seed}:noise")
    for _ in range(max(0, events - len(records))):
        moment = start + timedelta(seconds=noise_rng.uniform(0, duration))
        scene = Scene(
            rng=noise_rng,
            account=identities[noise_rng.choice(accounts)],
            region=noise_rng.choice(region_tuple),
            regions=region_tuple,
            time=moment.replace(microsecond=0),
        )
        records.append(background_call(scene))
    records.sort(key=lambda record: str(record["eventTime"]))
    return records


def _checked_accounts(accounts: Sequence[str]) -> list[str]:
    if not accounts:
        raise ValueError("at least one account is needed")
    for account in accounts:
        if len(account) != 12 or not account.isdigit():
            raise ValueError(f"not an AWS account ID (12 digits): {account!r}")
    return list(accounts)
