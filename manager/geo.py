"""Where a CloudTrail ``sourceIPAddress`` comes from: its country, for the console's
Geolocation map and the store's ``country`` counts (``StatsField.COUNTRY``).

The lookup is offline: ``geoip2fast`` ships its own country database (built from MaxMind's
GeoLite2 Country data, CC BY-SA 4.0 — the attribution is in ``static/vendor/geoip/NOTICE`` and
on the map panel), so an air-gapped console still places addresses and nothing is fetched at run
time.

CloudTrail's ``sourceIPAddress`` is not always an address: calls made by AWS on a user's behalf
carry a service name (``ec2.amazonaws.com``) or ``AWS Internal``; calls from inside a VPC through
an endpoint carry a private address. Those are reported as what they are (``service``,
``private``) and never placed on the map, where they would land wherever the database happens to
put them.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

PlaceKind = Literal["public", "private", "service", "unknown"]

# The map geometry (ECharts' world.json) names countries its own way; the database uses the
# names below. Only names that differ are listed; the rest match as they are.
_MAP_NAMES = {
    "Russia": "Russia",
    "South Korea": "Korea",
    "North Korea": "Dem. Rep. Korea",
    "Czechia": "Czech Rep.",
    "The Netherlands": "Netherlands",
    "Türkiye": "Turkey",
    "Laos": "Lao PDR",
    "Bosnia and Herzegovina": "Bosnia and Herz.",
    "Dominican Republic": "Dominican Rep.",
    "Central African Republic": "Central African Rep.",
    "DR Congo": "Dem. Rep. Congo",
    "Congo Republic": "Congo",
    "Equatorial Guinea": "Eq. Guinea",
    "South Sudan": "S. Sudan",
    "North Macedonia": "Macedonia",
    "Eswatini": "Swaziland",
    "Ivory Coast": "Côte d'Ivoire",
    "Solomon Islands": "Solomon Is.",
    "Cayman Islands": "Cayman Is.",
    "Faroe Islands": "Faeroe Is.",
    "Falkland Islands": "Falkland Is.",
    "French Polynesia": "Fr. Polynesia",
    "Northern Mariana Islands": "N. Mariana Is.",
    "U.S. Virgin Islands": "U.S. Virgin Is.",
    "Turks and Caicos Islands": "Turks and Caicos Is.",
    "Antigua and Barbuda": "Antigua and Barb.",
    "St Vincent and Grenadines": "St. Vin. and Gren.",
    "Western Sahara": "W. Sahara",
    "Cabo Verde": "Cape Verde",
    "Hashemite Kingdom of Jordan": "Jordan",
    "Republic of Lithuania": "Lithuania",
    "Republic of Moldova": "Moldova",
    "Federated States of Micronesia": "Micronesia",
}


@dataclass(frozen=True, slots=True)
class Place:
    """What the console shows for one ``sourceIPAddress``."""

    address: str
    kind: PlaceKind
    """``public`` (placed on the map), ``private`` (RFC 1918, loopback, link-local ...),
    ``service`` (an AWS service name such as ``ec2.amazonaws.com``), ``unknown`` (empty, or a
    public address the database does not know)."""
    country_code: str = ""
    country_name: str = ""
    map_name: str = ""
    """The country's name in the map geometry ('' when not placed)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "country_code": self.country_code,
            "country": self.country_name,
            "map_name": self.map_name,
        }


class GeoLocator:
    """Country of public addresses from the shipped database; loaded once, on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: Any = None

    def _database(self) -> Any:
        with self._lock:
            if self._db is None:
                # Imported here: loading the database takes most of a second, and a manager
                # whose console nobody opens should not pay it at start-up.
                from geoip2fast import GeoIP2Fast  # type: ignore[import-untyped]

                self._db = GeoIP2Fast(verbose=False)
            return self._db

    def locate(self, source: str) -> Place:
        text = source.strip()
        if not text:
            return Place(source, "unknown")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            # Not an address: a service principal or "AWS Internal".
            return Place(source, "service")
        if not address.is_global:
            return Place(source, "private")
        if address.version != 4:
            # The shipped database covers IPv4 only; say so instead of guessing.
            return Place(source, "unknown")
        found = self._database().lookup(text)
        code = str(getattr(found, "country_code", "") or "")
        if not code or code == "--":
            return Place(source, "unknown")
        name = str(found.country_name)
        return Place(source, "public", code, name, _MAP_NAMES.get(name, name))


LOCATOR = GeoLocator()
"""The process-wide locator (the database is read-only; one copy serves every request)."""


LOOKUP_CACHE = 262_144
"""Addresses whose country is remembered (~40 MB at most): counts by country map every address
of a range, and a week can hold tens of thousands; a lookup is ~15 us, a remembered one a
dictionary read."""

NOT_PLACED_KEYS: dict[PlaceKind, str] = {
    "private": "(private)",
    "service": "(service)",
    "unknown": "(unknown)",
}
"""The ``country`` key of an address that is not placed on the map, by its kind (brackets:
no country's name has them)."""
_KIND_OF_KEY: dict[str, PlaceKind] = {key: kind for kind, key in NOT_PLACED_KEYS.items()}


@lru_cache(maxsize=LOOKUP_CACHE)
def country_of(source: str) -> str:
    """The ``country`` key of a ``sourceIPAddress``: the database's country name for a placed
    public address (``United States``), else ``(private)``, ``(service)`` or ``(unknown)``.
    Looked up once per distinct address: the database is fixed for the life of the process."""
    place = LOCATOR.locate(source)
    if place.kind == "public":
        return place.country_name
    return NOT_PLACED_KEYS[place.kind]


def kind_of_key(key: str) -> PlaceKind:
    """``public`` for a country name, else the kind a ``(private)``-style key stands for."""
    return _KIND_OF_KEY.get(key, "public")


def map_name_of(country: str) -> str:
    """The country's name in the map geometry (ECharts' world.json)."""
    return _MAP_NAMES.get(country, country)
