"""The code location: every asset, check, schedule, sensor and resource of nostr-analytics."""

import dagster as dg

from nostr_assets.defs import automation, recovery
from nostr_assets.defs.data_freshness import data_freshness_checks
from nostr_assets.defs.dbt.assets import dbt_hourly_models, dbt_models
from nostr_assets.defs.events.assets import nostr_events
from nostr_assets.defs.geo.assets import asn_database, city_database, relay_geolocations
from nostr_assets.defs.relays.catalog import relay_catalog
from nostr_assets.defs.relays.snapshots import relay_snapshots
from nostr_assets.defs.resources import build_resources

defs = dg.Definitions(
    assets=[
        relay_catalog,
        relay_snapshots,
        city_database,
        asn_database,
        relay_geolocations,
        nostr_events,
        dbt_hourly_models,
        dbt_models,
    ],
    asset_checks=data_freshness_checks,
    jobs=[automation.raw_hourly_job, automation.raw_events_job, automation.relay_catalog_job],
    schedules=[automation.hourly_raw_schedule],
    sensors=[
        automation.late_events_sensor,
        automation.relay_discovery_sensor,
        automation.automation_sensor,
        recovery.dead_run_sensor,
    ],
    resources=build_resources(),
    # Steps share one DuckDB file that only one process may write, so they take turns anyway;
    # running them in the run's own process saves a new interpreter (and a reload of these
    # definitions and the dbt manifest) per step: about 3 s each, measured by bench_backfill.
    executor=dg.in_process_executor,
)
