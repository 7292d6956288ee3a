"""The demo's folder (default data/demo/, ignored by git) and the settings that point the
pipeline at it: its own warehouse, Dagster instance, relay list, dashboard and (invented)
GeoIP databases, so the user's real ones (data/nostr.duckdb, data/dagster_home/,
data/geoip/) are never touched."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nostr_assets.settings import PARTITION_FORMAT


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def warehouse(self) -> Path:
        # Named as the real one: dbt-duckdb calls the database by the file's name, and the
        # dbt manifest (prepared for data/nostr.duckdb) names it in row-count queries.
        return self.root / "nostr.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def relays(self) -> Path:
        return self.root / "relays"

    @property
    def relays_file(self) -> Path:
        return self.root / "relays.txt"

    @property
    def dashboard(self) -> Path:
        return self.root / "network.html"

    @property
    def geoip(self) -> Path:
        return self.root / "geoip"

    @property
    def city_db(self) -> Path:
        return self.geoip / "demo-city.mmdb"

    @property
    def asn_db(self) -> Path:
        return self.geoip / "demo-asn.mmdb"

    @property
    def summary(self) -> Path:
        return self.root / "demo.json"

    @property
    def results(self) -> Path:
        return self.root / "backfill.json"

    @property
    def log(self) -> Path:
        return self.root / "backfill.log"

    def reset(self) -> None:
        """Remove what a previous demo left (its relays' ports and hours are gone), and write
        the demo's bootstrap relay list: empty, so that only NOSTR_RELAYS is crawled."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path in (self.dagster_home, self.relays, self.geoip):
            shutil.rmtree(path, ignore_errors=True)
        for path in (
            self.warehouse,
            self.warehouse.with_name(self.warehouse.name + ".wal"),
            self.dashboard,
            self.summary,
            self.results,
            self.log,
        ):
            path.unlink(missing_ok=True)
        self.relays_file.write_text(
            "# The demo's bootstrap list: empty, so that only its own relays (NOSTR_RELAYS) "
            "are crawled.\n"
        )


def demo_environment(
    paths: DemoPaths, relay_urls: list[str], first_hour: int, geoip: bool = False
) -> dict[str, str]:
    """The settings that point the pipeline at the demo (nostr_assets/settings.py);
    ``geoip``: at the demo's own GeoIP databases (geoip.py), else as the shell says."""
    located = (
        {"NOSTR_GEOIP_CITY_DB": str(paths.city_db), "NOSTR_GEOIP_ASN_DB": str(paths.asn_db)}
        if geoip
        else {}
    )
    return {
        "DAGSTER_HOME": str(paths.dagster_home),
        "NOSTR_DUCKDB_PATH": str(paths.warehouse),
        "NOSTR_RELAYS": ",".join(relay_urls),
        # An explicit, empty list: the real bootstrap list (data/relays.txt) is never crawled.
        "NOSTR_RELAYS_FILE": str(paths.relays_file),
        "NOSTR_ALLOW_PRIVATE_ADDRESSES": "true",
        "NOSTR_PARTITIONS_START": datetime.fromtimestamp(first_hour, UTC).strftime(
            PARTITION_FORMAT
        ),
        "NOSTR_DASHBOARD_PATH": str(paths.dashboard),
        # Every kind, whatever the shell's environment says.
        "NOSTR_KINDS": "",
        # Publishing off (an empty setting is unset): the demo's observations are of relays on
        # loopback addresses, and a monitor key in the shell must not sign reports of them for
        # the world.
        "NOSTR_MONITOR_SECRET_KEY": "",
        "NOSTR_MONITOR_PUBLISH_RELAYS": "",
        **located,
    }


def prepare_instance(dagster_home: Path, project_root: Path) -> None:
    """The demo's DAGSTER_HOME, configured as `make run`'s (pools, run monitoring)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    source = project_root / "data" / "dagster_home" / "dagster.yaml"
    if source.is_file():
        shutil.copyfile(source, dagster_home / "dagster.yaml")
