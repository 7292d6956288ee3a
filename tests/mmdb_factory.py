"""Small MaxMind-format (.mmdb) databases written by tests, shaped like GeoLite2.

Real geolocation databases are large and change monthly; tests need a few networks with known
answers. These files are written with the ``mmdb-writer`` package and read back by ``geoip2``
exactly as GeoLite2-City and GeoLite2-ASN files are (same ``database_type``, same record
layout), so the code under test cannot tell the difference.

    write_city_db(path, {"203.0.113.0/24": {"country_code": "NL", "country_name": "Netherlands",
                                             "city": "Amsterdam", "latitude": 52.37,
                                             "longitude": 4.89}})
    write_asn_db(path, {"203.0.113.0/24": {"asn": 64500, "as_organization": "Example AS"}})

Keys follow ``nostr_assets.lib.network.geolocation.GeoRow``; each is optional. Any other key
is copied into the record unchanged (for example ``"subdivisions": [...]``). Networks may be
IPv4 or IPv6;
``ip_version=4`` writes an IPv4-only tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# 2024-01-01T00:00:00Z: a fixed build time, so rows that carry it are deterministic.
DEFAULT_BUILD_EPOCH = 1_704_067_200
_CITY_KEYS = {"country_code", "country_name", "city", "latitude", "longitude"}


class _Writer(MMDBWriter):
    """mmdb-writer stamps the current time as build_epoch; tests need a fixed one."""

    def __init__(self, build_epoch: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._build_epoch = build_epoch

    def _build_meta(self) -> dict[str, Any]:
        return {**super()._build_meta(), "build_epoch": self._build_epoch}


def city_record(spec: dict[str, Any]) -> dict[str, Any]:
    """A GeoLite2-City record from the flat ``GeoRow``-style keys of ``spec``."""
    record: dict[str, Any] = {k: v for k, v in spec.items() if k not in _CITY_KEYS}
    country: dict[str, Any] = {}
    if spec.get("country_code") is not None:
        country["iso_code"] = spec["country_code"]
    if spec.get("country_name") is not None:
        country["names"] = {"en": spec["country_name"]}
    if country:
        record["country"] = country
        record["registered_country"] = country
    if spec.get("city") is not None:
        record["city"] = {"names": {"en": spec["city"]}}
    location = {k: float(spec[k]) for k in ("latitude", "longitude") if spec.get(k) is not None}
    if location:
        record["location"] = location
    return record


def _write(
    path: Path | str,
    records: dict[str, dict[str, Any]],
    database_type: str,
    build_epoch: int,
    ip_version: int,
) -> Path:
    writer = _Writer(
        build_epoch,
        ip_version=ip_version,
        # In an IPv6 tree, IPv4 networks live at ::a.b.c.d, as in GeoLite2 files.
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description={"en": f"{database_type} written by tests/mmdb_factory.py"},
    )
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path


def write_city_db(
    path: Path | str,
    networks: dict[str, dict[str, Any]],
    *,
    database_type: str = "GeoLite2-City",
    build_epoch: int = DEFAULT_BUILD_EPOCH,
    ip_version: int = 6,
) -> Path:
    """Write a city database mapping each network (CIDR) to a GeoLite2-City record."""
    records = {net: city_record(spec) for net, spec in networks.items()}
    return _write(path, records, database_type, build_epoch, ip_version)


def write_asn_db(
    path: Path | str,
    networks: dict[str, dict[str, Any]],
    *,
    database_type: str = "GeoLite2-ASN",
    build_epoch: int = DEFAULT_BUILD_EPOCH,
    ip_version: int = 6,
) -> Path:
    """Write an ASN database; each spec has ``asn`` (int) and ``as_organization`` (str)."""
    records: dict[str, dict[str, Any]] = {}
    for network, spec in networks.items():
        record = {k: v for k, v in spec.items() if k not in {"asn", "as_organization"}}
        if spec.get("asn") is not None:
            record["autonomous_system_number"] = int(spec["asn"])
        if spec.get("as_organization") is not None:
            record["autonomous_system_organization"] = spec["as_organization"]
        records[network] = record
    return _write(path, records, database_type, build_epoch, ip_version)
