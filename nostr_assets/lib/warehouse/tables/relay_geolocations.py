"""raw.relay_geolocations: where each relay's connected IP was, per the local .mmdb files."""

from __future__ import annotations

from datetime import datetime

from nostr_assets.lib.network.geolocation import GeoRow
from nostr_assets.lib.warehouse.raw_table import RawTable

TABLE = RawTable(
    name="relay_geolocations",
    grain="One row per relay and snapshot hour that had a connected IP.",
    time_column="snapshot_hour",
    columns="""
        snapshot_hour        timestamptz not null,
        relay_url            varchar not null,
        ip                   varchar not null,
        country_code         varchar,
        country_name         varchar,
        city                 varchar,
        latitude             double,
        longitude            double,
        asn                  bigint,
        as_organization      varchar,
        city_db_edition      varchar,
        city_db_built_at     timestamptz,
        asn_db_edition       varchar,
        asn_db_built_at      timestamptz,
        primary key (snapshot_hour, relay_url)
    """,
)


def geolocation_row(hour: datetime, relay_url: str, geo: GeoRow) -> dict:
    """The row of one relay's IP in ``hour``; every other column is the ``GeoRow`` field of
    the same name, so a field added there and here needs nothing else."""
    return {"snapshot_hour": hour, "relay_url": relay_url, **vars(geo)}
