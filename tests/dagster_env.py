"""Resources that point the real asset graph at test relays, a temporary DuckDB and a test .mmdb.

Nothing here is a fake: the assets run unchanged; only their configuration differs from
production (relays on 127.0.0.1, so the address guard is opened as configuration allows).
"""

from __future__ import annotations

import os
from pathlib import Path

# The fixed test events are from 2024-01-01, before the default first partition (a recent
# hour, see nostr_assets/settings.py). Set before anything imports defs/partitions.py.
os.environ.setdefault("NOSTR_PARTITIONS_START", "2024-01-01-00:00")

from functools import cache

import dagster as dg
from mmdb_factory import write_asn_db, write_city_db

from nostr_assets.defs.dbt.project import DBT_EXECUTABLE, dbt_project
from nostr_assets.defs.resources import (
    DashboardResource,
    GeoIPResource,
    NostrCrawlerResource,
    NostrDbtResource,
    NostrMonitorResource,
    RelaySourcesResource,
    WarehouseResource,
)

# Where 127.0.0.1 is "located" in the test databases.
LOOPBACK_PLACE = {
    "country_code": "IS",
    "country_name": "Iceland",
    "city": "Reykjavik",
    "latitude": 64.1466,
    "longitude": -21.9426,
}
LOOPBACK_AS = {"asn": 64512, "as_organization": "Loopback Test Networks"}


def write_test_geoip(directory: Path) -> tuple[Path, Path]:
    city = directory / "test-city.mmdb"
    asn = directory / "test-asn.mmdb"
    write_city_db(city, {"127.0.0.0/8": LOOPBACK_PLACE})
    write_asn_db(asn, {"127.0.0.0/8": LOOPBACK_AS})
    return city, asn


def graph_resources(
    database: Path,
    relay_urls: list[str],
    city_db: Path | str = "",
    asn_db: Path | str = "",
    kinds: str = "",
) -> dict:
    return {
        "duckdb": WarehouseResource(database=str(database)),
        "relay_sources": RelaySourcesResource(relays_file="", extra_relays=",".join(relay_urls)),
        "crawler": NostrCrawlerResource(
            kinds=kinds,
            allow_private_addresses=True,
            connect_timeout_s=3.0,
            idle_timeout_s=5.0,
            total_timeout_s=60.0,
            concurrency=8,
            # The test relays cap REQs at a few events (relay Y of the end-to-end test at 4),
            # below what real relay software does: no page is taken as short by its size alone.
            min_relay_cap=1,
        ),
        "geoip": GeoIPResource(city_db=str(city_db), asn_db=str(asn_db)),
        # dbt opens the test warehouse because the resource says so, not the environment.
        "dbt": NostrDbtResource(
            project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE, duckdb_path=str(database)
        ),
        # The dashboard beside the test warehouse, never in the checkout's data/reports/.
        "dashboard": DashboardResource(path=str(database.parent / "reports" / "network.html")),
        # Publishing off, as on a new install; tests that publish set a key and relays.
        "monitor": NostrMonitorResource(),
    }


@cache
def python_assets() -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The project's own Python assets as the code location loads them: every asset of the
    definitions except dbt's models (the .mmdb files are specs: made elsewhere)."""
    from nostr_assets.definitions import defs

    return [
        asset
        for asset in defs().assets or []
        if isinstance(asset, dg.AssetSpec) or not any("dbt" in spec.kinds for spec in asset.specs)
    ]
