"""IP geolocation from local MaxMind-format (.mmdb) databases, never a web API.

A relay's address is looked up on this machine: sending every relay IP to a third-party service
would leak the crawl and add a rate limit. The city database may be MaxMind GeoIP2/GeoLite2-City
or DB-IP City Lite (same record layout, read through ``reader.city()``); the ASN database is
optional (GeoLite2-ASN, or DB-IP ASN Lite which declares itself GeoLite2-ASN compatible). Each
row carries the edition and build time of the databases it came from, so a mart can tell a
2023 answer from a 2026 one.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import geoip2.database
import geoip2.errors

CITY_DB_ENV = "NOSTR_GEOIP_CITY_DB"
ASN_DB_ENV = "NOSTR_GEOIP_ASN_DB"
# Looked for in this order in the geoip folder: GeoLite2 is newer and finer than DB-IP Lite.
CITY_DB_NAMES = ("GeoLite2-City.mmdb", "GeoIP2-City.mmdb", "dbip-city-lite.mmdb")
ASN_DB_NAMES = ("GeoLite2-ASN.mmdb", "dbip-asn-lite.mmdb")

_HOW_TO_GET = (
    "Run `make geoip` (installs DB-IP City Lite into data/geoip/ without an account; with "
    "MAXMIND_LICENSE_KEY set it also fetches GeoLite2-City and GeoLite2-ASN), or point "
    f"{CITY_DB_ENV} / {ASN_DB_ENV} at existing .mmdb files."
)


class GeoDatabaseMissing(FileNotFoundError):
    """No .mmdb file where one was expected; the message says how to get one."""

    def __init__(self, path: Path | str | None, what: str = "GeoIP database") -> None:
        where = f" at {path}" if path is not None else ""
        super().__init__(f"{what} not found{where}. {_HOW_TO_GET}")
        self.path = path


@dataclass(frozen=True)
class GeoRow:
    """Where one IP address is, per the databases; every field None when it is not known."""

    ip: str
    country_code: str | None = None
    country_name: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    asn: int | None = None
    as_organization: str | None = None
    city_db_edition: str | None = None
    city_db_built_at: datetime | None = None
    asn_db_edition: str | None = None
    asn_db_built_at: datetime | None = None


def city_database_in(directory: Path | str) -> Path:
    """The best city database in ``directory``; when there is none, the path of the free one
    `make geoip` installs, for the message that says how to get it."""
    directory = Path(directory)
    found = (directory / name for name in CITY_DB_NAMES if (directory / name).is_file())
    return next(found, directory / CITY_DB_NAMES[-1])


def asn_database_in(directory: Path | str) -> Path | None:
    """The best ASN database in ``directory``, or None (ASN columns then stay empty)."""
    directory = Path(directory)
    return next((directory / n for n in ASN_DB_NAMES if (directory / n).is_file()), None)


def _open_private_copy(path: Path) -> geoip2.database.Reader:
    """A reader on a copy of ``path`` that no one else can name.

    The reader memory-maps its file, and a mapped file truncated or rewritten in place (by
    `make geoip`, a cron job, an editor) kills the process with SIGBUS on the next lookup. The
    copy is unlinked as soon as it is mapped: the mapping keeps it alive, nothing can rewrite
    it, and its pages stay in the page cache rather than in the process's own memory, as they
    would with maxminddb's MODE_MEMORY (60 to 130 MB for a city database).
    """
    handle, copy = tempfile.mkstemp(prefix="nostr-geoip-", suffix=".mmdb")
    try:
        with os.fdopen(handle, "wb") as out, path.open("rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        return geoip2.database.Reader(copy, locales=["en"])
    finally:
        os.unlink(copy)


def _open(path: Path, kind: str) -> tuple[geoip2.database.Reader, str, datetime]:
    if not path.is_file():
        raise GeoDatabaseMissing(path, f"GeoIP {kind} database")
    reader = _open_private_copy(path)
    meta = reader.metadata()
    # geoip2 checks the type on every lookup; checking once here gives a clear error early
    # (an ASN file passed as the city database, say) instead of a TypeError per relay.
    if kind.upper() not in meta.database_type.upper():
        reader.close()
        raise ValueError(f"{path} is a {meta.database_type} database, not a {kind} database")
    return reader, meta.database_type, datetime.fromtimestamp(meta.build_epoch, tz=UTC)


class GeoLocator:
    """Look IP addresses up in a city database and, optionally, an ASN database.

    Use as a context manager (or call ``close``) so the memory-mapped files are released.
    """

    def __init__(self, city_db: Path | str, asn_db: Path | str | None = None) -> None:
        self._city, self.city_db_edition, self.city_db_built_at = _open(Path(city_db), "City")
        self._city_ipv4_only = self._city.metadata().ip_version == 4
        self._asn: geoip2.database.Reader | None = None
        self.asn_db_edition: str | None = None
        self.asn_db_built_at: datetime | None = None
        self._asn_ipv4_only = False
        if asn_db is not None:
            try:
                self._asn, self.asn_db_edition, self.asn_db_built_at = _open(Path(asn_db), "ASN")
                self._asn_ipv4_only = self._asn.metadata().ip_version == 4
            except BaseException:
                self._city.close()
                raise

    def __enter__(self) -> GeoLocator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._city.close()
        if self._asn is not None:
            self._asn.close()

    def locate(self, ip: str) -> GeoRow:
        """Geolocate one address; unknown or unparsable addresses give a row of Nones."""
        row: dict[str, Any] = {
            "ip": ip,
            "city_db_edition": self.city_db_edition,
            "city_db_built_at": self.city_db_built_at,
            "asn_db_edition": self.asn_db_edition,
            "asn_db_built_at": self.asn_db_built_at,
        }
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return GeoRow(**row)
        # An IPv4-mapped IPv6 address (::ffff:1.2.3.4, as dual-stack sockets report peers) is
        # the IPv4 address; not every database aliases that range to its IPv4 tree.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        # An IPv4-only database cannot answer for an IPv6 address (geoip2 would raise).
        ipv6 = address.version == 6
        if not (ipv6 and self._city_ipv4_only):
            try:
                city = self._city.city(address)
                row.update(
                    country_code=city.country.iso_code,
                    country_name=city.country.name,
                    city=city.city.name,
                    latitude=city.location.latitude,
                    longitude=city.location.longitude,
                )
            except geoip2.errors.AddressNotFoundError:
                pass
        if self._asn is not None and not (ipv6 and self._asn_ipv4_only):
            try:
                asn = self._asn.asn(address)
                row.update(
                    asn=asn.autonomous_system_number,
                    as_organization=asn.autonomous_system_organization,
                )
            except geoip2.errors.AddressNotFoundError:
                pass
        return GeoRow(**row)
