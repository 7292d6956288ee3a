"""Protects IP geolocation from local .mmdb files.

Lookups are checked against three kinds of database: small GeoLite2-shaped files written here
with known answers (tests/mmdb_factory.py), MaxMind's own test databases from
../shared/testdata/mmdb (skipped when absent), and the real DB-IP City Lite database that
`make geoip` installs (skipped when absent). Missing or mismatched files must fail loudly with a
message that says how to get a database; unknown addresses must give rows of Nones.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mmdb_factory import write_asn_db, write_city_db

from nostr_assets.lib.network.geolocation import (
    GeoDatabaseMissing,
    GeoLocator,
    GeoRow,
    asn_database_in,
    city_database_in,
)

TESTDATA = Path(__file__).resolve().parents[4] / "shared" / "testdata" / "mmdb"
PROJECT = Path(__file__).resolve().parents[3]
DBIP = PROJECT / "data" / "geoip" / "dbip-city-lite.mmdb"
BUILT = datetime(2024, 1, 1, tzinfo=UTC)

CITIES = {
    "127.0.0.1/32": {
        "country_code": "DE",
        "country_name": "Germany",
        "city": "Berlin",
        "latitude": 52.52,
        "longitude": 13.405,
    },
    "203.0.113.0/24": {
        "country_code": "NL",
        "country_name": "Netherlands",
        "city": "Amsterdam",
        "latitude": 52.3676,
        "longitude": 4.9041,
    },
    "2001:db8::/32": {"country_code": "JP", "country_name": "Japan"},  # no city, no location
}
ASNS = {
    "127.0.0.1/32": {"asn": 64496, "as_organization": "Loopback Networks"},
    "203.0.113.0/24": {"asn": 4_200_000_000, "as_organization": "Example Transit B.V."},
}


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("mmdb")
    city = write_city_db(directory / "GeoLite2-City.mmdb", CITIES)
    asn = write_asn_db(directory / "GeoLite2-ASN.mmdb", ASNS)
    return city, asn


def test_locate_known_network(dbs: tuple[Path, Path]) -> None:
    with GeoLocator(*dbs) as geo:
        assert geo.locate("203.0.113.77") == GeoRow(
            ip="203.0.113.77",
            country_code="NL",
            country_name="Netherlands",
            city="Amsterdam",
            latitude=52.3676,
            longitude=4.9041,
            asn=4_200_000_000,
            as_organization="Example Transit B.V.",
            city_db_edition="GeoLite2-City",
            city_db_built_at=BUILT,
            asn_db_edition="GeoLite2-ASN",
            asn_db_built_at=BUILT,
        )
        loopback = geo.locate("127.0.0.1")
        assert (loopback.city, loopback.asn) == ("Berlin", 64496)
        assert geo.locate("127.0.0.2").city is None  # a /32: its neighbour is unknown


def test_ipv4_mapped_and_ipv6(dbs: tuple[Path, Path]) -> None:
    with GeoLocator(*dbs) as geo:
        mapped = geo.locate("::ffff:203.0.113.5")
        assert mapped.ip == "::ffff:203.0.113.5"
        assert (mapped.city, mapped.asn) == ("Amsterdam", 4_200_000_000)
        v6 = geo.locate("2001:db8::1")
        assert (v6.country_code, v6.city, v6.latitude, v6.asn) == ("JP", None, None, None)


@pytest.mark.parametrize("ip", ["8.8.8.8", "2606:4700::1", "not an ip", "", "999.1.1.1"])
def test_unknown_addresses_give_nones(dbs: tuple[Path, Path], ip: str) -> None:
    with GeoLocator(*dbs) as geo:
        row = geo.locate(ip)
    assert row == GeoRow(
        ip=ip,
        city_db_edition="GeoLite2-City",
        city_db_built_at=BUILT,
        asn_db_edition="GeoLite2-ASN",
        asn_db_built_at=BUILT,
    )


def test_city_only(dbs: tuple[Path, Path]) -> None:
    with GeoLocator(dbs[0]) as geo:
        row = geo.locate("203.0.113.1")
    assert row.city == "Amsterdam"
    assert (row.asn, row.as_organization, row.asn_db_edition, row.asn_db_built_at) == (None,) * 4


def test_ipv4_only_database(tmp_path: Path) -> None:
    city = write_city_db(
        tmp_path / "c.mmdb", {"203.0.113.0/24": {"city": "Amsterdam"}}, ip_version=4
    )
    asn = write_asn_db(tmp_path / "a.mmdb", {"203.0.113.0/24": {"asn": 64500}}, ip_version=4)
    with GeoLocator(city, asn) as geo:
        # geoip2 raises for an IPv6 address in an IPv4-only file: the locator answers None.
        v6 = geo.locate("2001:db8::1")
        assert (v6.city, v6.asn) == (None, None)
        v4 = geo.locate("203.0.113.9")
        assert (v4.city, v4.asn) == ("Amsterdam", 64500)


def test_missing_database_says_how_to_get_one(tmp_path: Path, dbs: tuple[Path, Path]) -> None:
    with pytest.raises(GeoDatabaseMissing) as caught:
        GeoLocator(tmp_path / "nope.mmdb")
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    for hint in ("make geoip", "NOSTR_GEOIP_CITY_DB", "NOSTR_GEOIP_ASN_DB", "MAXMIND_LICENSE_KEY"):
        assert hint in message
    with pytest.raises(GeoDatabaseMissing):
        GeoLocator(dbs[0], tmp_path / "no-asn.mmdb")


def test_swapped_databases_are_refused(dbs: tuple[Path, Path]) -> None:
    city, asn = dbs
    with pytest.raises(ValueError, match="GeoLite2-ASN database, not a City"):
        GeoLocator(asn)
    with pytest.raises(ValueError, match="not a ASN"):
        GeoLocator(city, city)


def test_close_releases_readers(dbs: tuple[Path, Path]) -> None:
    geo = GeoLocator(*dbs)
    with geo:
        pass
    with pytest.raises(ValueError):  # geoip2 refuses to read a closed database
        geo.locate("203.0.113.1")


def test_database_info_and_find(dbs: tuple[Path, Path], tmp_path: Path) -> None:
    with GeoLocator(*dbs) as geo:
        row = geo.locate("203.0.113.1")
    assert (row.city_db_edition, row.city_db_built_at) == ("GeoLite2-City", BUILT)
    assert (row.asn_db_edition, row.asn_db_built_at) == ("GeoLite2-ASN", BUILT)
    assert (city_database_in(dbs[0].parent), asn_database_in(dbs[0].parent)) == dbs
    # Nothing there: the path `make geoip` fills, which then fails with how to get it.
    missing = city_database_in(tmp_path)
    assert (missing.name, asn_database_in(tmp_path)) == ("dbip-city-lite.mmdb", None)
    with pytest.raises(GeoDatabaseMissing, match="make geoip"):
        GeoLocator(missing)
    write_city_db(tmp_path / "GeoIP2-City.mmdb", {}, database_type="GeoIP2-City")
    write_city_db(tmp_path / "dbip-city-lite.mmdb", {}, database_type="DBIP-City-Lite")
    assert city_database_in(tmp_path) == tmp_path / "GeoIP2-City.mmdb"


needs_testdata = pytest.mark.skipif(
    not (TESTDATA / "GeoLite2-City-Test.mmdb").is_file(), reason="shared/testdata/mmdb absent"
)


@needs_testdata
@pytest.mark.parametrize(
    ("city_file", "edition"),
    [("GeoLite2-City-Test.mmdb", "GeoLite2-City"), ("GeoIP2-City-Test.mmdb", "GeoIP2-City")],
)
def test_maxmind_test_databases(city_file: str, edition: str) -> None:
    # Expected values from lookups.txt beside the databases.
    with GeoLocator(TESTDATA / city_file, TESTDATA / "GeoLite2-ASN-Test.mmdb") as geo:
        london = geo.locate("81.2.69.142")
        assert (london.country_code, london.country_name, london.city) == (
            "GB",
            "United Kingdom",
            "London",
        )
        assert (london.latitude, london.longitude) == (51.5142, -0.0931)
        assert london.city_db_edition == edition
        assert london.city_db_built_at is not None and london.city_db_built_at.tzinfo is UTC
        telstra = geo.locate("1.128.0.0")
        assert (telstra.asn, telstra.as_organization) == (1221, "Telstra Pty Ltd")
        att = geo.locate("12.81.92.1")
        assert (att.asn, att.as_organization) == (7018, "AT&T Services")
        assert geo.locate("10.0.0.1").country_code is None


@pytest.mark.skipif(not DBIP.is_file(), reason="data/geoip/dbip-city-lite.mmdb absent")
def test_dbip_city_lite_is_readable() -> None:
    with GeoLocator(DBIP) as geo:
        row = geo.locate("1.1.1.1")
        assert row.city_db_edition == "DBIP-City-Lite" and row.city_db_built_at is not None
        assert row.country_code is not None and len(row.country_code) == 2
        assert row.latitude is not None and row.longitude is not None
        assert geo.locate("2606:4700:4700::1111").country_code is not None
        assert geo.locate("10.1.2.3").country_code is None


OVERWRITE_CHILD = """
import sys
from nostr_assets.lib.network.geolocation import GeoLocator
city = sys.argv[1]
with GeoLocator(city) as geo:
    # `make geoip` or a cron job replaces the file in place while the reader is open.
    with open(city, "r+b") as f:
        f.truncate(0)
    try:
        row = geo.locate("203.0.113.7")
        print("answered", row.country_code)
    except Exception as error:
        print("refused", type(error).__name__)
"""


def test_a_database_overwritten_under_an_open_reader_does_not_kill_the_process(
    tmp_path: Path,
) -> None:
    city = write_city_db(tmp_path / "GeoLite2-City.mmdb", CITIES)
    child = subprocess.run(
        [sys.executable, "-c", OVERWRITE_CHILD, str(city)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # A memory-mapped file truncated under the reader kills the process with SIGBUS (-7).
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    # The reader holds its own copy: the lookup still answers from the file as it was opened.
    assert child.stdout.strip() == "answered NL"
