"""Local MaxMind-format databases (.mmdb) for geolocation; never a web API."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from nostr_assets.defs.resources.fields import about
from nostr_assets.lib.network.geolocation import asn_database_in, city_database_in
from nostr_assets.settings import find_project_root


class GeoIPResource(dg.ConfigurableResource):
    """Local MaxMind-format databases (.mmdb); never a web API."""

    city_db: str = Field(default="", description=about("NOSTR_GEOIP_CITY_DB"))
    asn_db: str = Field(default="", description=about("NOSTR_GEOIP_ASN_DB"))
    geoip_dir: str = Field(default="", description="where to look when a path is empty")

    def _folder(self) -> Path:
        return Path(self.geoip_dir or find_project_root() / "data" / "geoip")

    def city_path(self) -> Path:
        return Path(self.city_db) if self.city_db else city_database_in(self._folder())

    def asn_path(self) -> Path | None:
        return Path(self.asn_db) if self.asn_db else asn_database_in(self._folder())
