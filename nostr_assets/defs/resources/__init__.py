"""Configurable resources, built from the settings (nostr_assets/settings.py) in one place.

One module per resource; this one binds them to their keys for the code location.

Every knob a user turns is a resource field, so the UI shows the value in use. The fields get
the values `load_settings()` parsed, not `dg.EnvVar` bindings: an EnvVar is read again, in the
run's process, through Dagster's own parsing (pydantic accepts "t" and "n" as booleans), which
is the second configuration path issue 7 removes. Each field is validated by the parser of
its setting, so a value given another way (a test, the launchpad's run config) is refused
with the same one line at resource init.

A bad environment stops the code location from loading: `build_resources()` raises the
SettingsError, whose message is one line per bad variable, and Dagster shows it as the
location's load error. Loading with a fallback instead would run the hourly schedule with
settings nobody chose.
"""

from __future__ import annotations

import dagster as dg

from nostr_assets.defs.dbt.project import DBT_EXECUTABLE, dbt_project
from nostr_assets.defs.resources.dbt import NostrDbtResource
from nostr_assets.defs.resources.geoip import GeoIPResource
from nostr_assets.defs.resources.monitor import KEY_VARIABLE, NostrMonitorResource
from nostr_assets.defs.resources.relays import NostrCrawlerResource, RelaySourcesResource
from nostr_assets.defs.resources.reports import DashboardResource
from nostr_assets.defs.resources.warehouse import WarehouseResource, WarehouseUnusable
from nostr_assets.defs.writers import EXECUTOR
from nostr_assets.settings import Settings, catalog_passwords, load_settings

__all__ = [
    "DashboardResource",
    "GeoIPResource",
    "NostrCrawlerResource",
    "NostrDbtResource",
    "NostrMonitorResource",
    "RelaySourcesResource",
    "WarehouseResource",
    "WarehouseUnusable",
    "build_resources",
    "resources",
]


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """Every resource of the code location from the settings; raises SettingsError (one line
    per bad variable) when the environment is bad."""
    settings = load_settings() if settings is None else settings
    database = str(settings.duckdb_path)
    catalog = settings.ducklake_catalog
    return {
        "duckdb": WarehouseResource(
            database=database,
            warehouse=settings.warehouse,
            # A value holding a password is bound as its variable, as the monitor's key is:
            # the UI shows the variable's name, never the password.
            ducklake_catalog=(
                dg.EnvVar("NOSTR_DUCKLAKE_CATALOG") if catalog_passwords(catalog) else catalog
            ),
            ducklake_data_path=settings.ducklake_data_path,
            ducklake_s3_endpoint=settings.ducklake_s3_endpoint or "",
            ducklake_s3_region=settings.ducklake_s3_region,
            ducklake_s3_access_key_id=settings.ducklake_s3_access_key_id or "",
            ducklake_s3_secret_access_key=(
                dg.EnvVar("NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY")
                if settings.ducklake_s3_secret_set
                else ""
            ),
            # DuckDB checkpoints its WAL into the file every 16 MB by default; during a backfill
            # that was two thirds of the landing time (bench_backfill). Checkpoint less often:
            # the WAL is still fsynced at every commit, so nothing committed can be lost.
            connection_config={
                "checkpoint_threshold": "256MB",
                "memory_limit": f"{settings.duckdb_memory_mb}MB",
            },
        ),
        "relay_sources": RelaySourcesResource(
            relays_file=str(settings.relays_file or ""),
            extra_relays=",".join(settings.relays),
            urls_per_event=settings.catalog_urls_per_event,
            new_urls_per_run=settings.catalog_new_urls_per_run,
        ),
        "crawler": NostrCrawlerResource(
            kinds=",".join(str(k) for k in settings.kinds or ()),
            concurrency=settings.concurrency,
            connect_timeout_s=settings.connect_timeout,
            idle_timeout_s=settings.idle_timeout,
            total_timeout_s=settings.total_timeout,
            max_window_mb=settings.max_window_mb,
            min_relay_cap=settings.min_relay_cap,
            nip11_max_kb=settings.nip11_max_kb,
            allow_private_addresses=settings.allow_private_addresses,
        ),
        "geoip": GeoIPResource(
            city_db=str(settings.geoip_city_db or ""),
            asn_db=str(settings.geoip_asn_db or ""),
            geoip_dir=str(settings.project_root / "data" / "geoip"),
        ),
        "dbt": NostrDbtResource(
            # DbtCliResource takes the DbtProject itself (typed as its path).
            project_dir=dbt_project,  # type: ignore[arg-type]
            dbt_executable=DBT_EXECUTABLE,
            duckdb_path=database,
            warehouse=settings.warehouse,
            # As for the warehouse: a catalog holding a password is bound as its variable.
            ducklake_catalog=(
                dg.EnvVar("NOSTR_DUCKLAKE_CATALOG") if catalog_passwords(catalog) else catalog
            ),
            ducklake_data_path=settings.ducklake_data_path,
        ),
        "dashboard": DashboardResource(
            path=str(settings.dashboard_path), project_root=str(settings.project_root)
        ),
        "monitor": NostrMonitorResource(
            # The one EnvVar binding: a secret must not be a value the UI displays. The
            # setting was checked above (and is never repeated, even when refused).
            secret_key=dg.EnvVar(KEY_VARIABLE) if settings.monitor_secret_key_set else "",
            publish_relays=",".join(settings.monitor_publish_relays or ()),
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """The resources of the code location, read from the environment when it loads (not when
    this module is imported), and the executor its runs use."""
    return dg.Definitions(
        resources=build_resources(),
        # On the DuckDB file steps take turns anyway (one writing process), and running them
        # in the run's own process saves a new interpreter (and a reload of these definitions
        # and the dbt manifest) per step: about 3 s each, measured by bench_backfill. On a
        # DuckLake each step gets a process of its own and they run at once (defs/writers.py).
        executor=EXECUTOR,
    )
