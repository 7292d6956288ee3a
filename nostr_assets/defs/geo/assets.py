"""raw/relay_geolocations, and the local .mmdb databases it reads as external assets."""

from collections import Counter

import dagster as dg
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.freshness import HOURLY_FRESHNESS
from nostr_assets.defs.partitions import OBSERVATIONS_RUN, hourly_partitions, single_run
from nostr_assets.defs.resources import GeoIPResource
from nostr_assets.defs.writers import RAW_WRITERS_POOL
from nostr_assets.lib.network.geolocation import GeoDatabaseMissing, GeoLocator
from nostr_assets.lib.warehouse.landing import replace_window
from nostr_assets.lib.warehouse.tables.relay_geolocations import geolocation_row

# The databases are files someone else builds (DB-IP, MaxMind); they appear in the graph so
# that lineage shows which database located what.
city_database = dg.AssetSpec(
    ["geoip", "city_database"],
    description="The local MaxMind-format city database (.mmdb): GeoLite2 City, or DB-IP City "
    "Lite (CC BY 4.0, https://db-ip.com). Installed by `make geoip`; path from "
    "NOSTR_GEOIP_CITY_DB.",
    group_name="geoip",
    kinds={"mmdb"},
)
asn_database = dg.AssetSpec(
    ["geoip", "asn_database"],
    description="The local MaxMind-format ASN database (.mmdb), GeoLite2 ASN when "
    "MAXMIND_LICENSE_KEY was set for `make geoip`; path from NOSTR_GEOIP_ASN_DB. Optional.",
    group_name="geoip",
    kinds={"mmdb"},
)


@single_run(
    dg.asset,
    key=["raw", "relay_geolocations"],
    deps=[["raw", "relay_snapshots"], city_database, asn_database],
    group_name="relays",
    kinds={"python", "duckdb"},
    tags=OBSERVATIONS_RUN,
    partitions_def=hourly_partitions,
    freshness_policy=HOURLY_FRESHNESS,
    pool=RAW_WRITERS_POOL,
)
def relay_geolocations(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, geoip: GeoIPResource
) -> dg.MaterializeResult:
    """One row per relay and hour with a connected IP: country, city, latitude, longitude, ASN
    and organisation from local .mmdb databases (never a web API), with each database's
    edition and build date on every row."""
    window = context.partition_time_window
    try:
        locator = GeoLocator(geoip.city_path(), geoip.asn_path())
    except GeoDatabaseMissing as missing:
        raise dg.Failure(description=str(missing), allow_retries=False) from None

    with duckdb.get_connection() as conn:
        targets = conn.execute(
            """
            select snapshot_hour, relay_url, connected_ip from raw.relay_snapshots
            where snapshot_hour >= $1 and snapshot_hour < $2 and connected_ip is not null
            order by snapshot_hour, relay_url
            """,
            [window.start, window.end],
        ).fetchall()

    rows = []
    with locator:
        for hour, relay_url, ip in targets:
            rows.append(geolocation_row(hour, relay_url, locator.locate(ip)))
    with duckdb.get_connection() as conn:
        replace_window(conn, "relay_geolocations", "snapshot_hour", window.start, window.end, rows)

    countries = Counter(r["country_code"] for r in rows if r["country_code"])
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "located": sum(1 for r in rows if r["country_code"] or r["asn"]),
            "not_located": sum(1 for r in rows if not (r["country_code"] or r["asn"])),
            "countries": len(countries),
            "city_database": str(geoip.city_path()),
        }
    )
