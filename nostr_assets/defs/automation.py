"""Schedules and sensors: the hour just closed, late events two days on, and new relays."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from duckdb import CatalogException, IOException

from nostr_assets.defs.partitions import (
    EVENTS_RUN,
    HOURLY_RUN_TAG,
    OBSERVATIONS_RUN,
    hourly_partitions,
)
from nostr_assets.defs.relays.catalog import read_discovered_relays
from nostr_assets.defs.resources import RelaySourcesResource, WarehouseResource
from nostr_assets.lib.warehouse.raw_table import scalar

RAW_EVENTS = dg.AssetSelection.tag(HOURLY_RUN_TAG, EVENTS_RUN[HOURLY_RUN_TAG])
RAW_OBSERVATIONS = dg.AssetSelection.tag(HOURLY_RUN_TAG, OBSERVATIONS_RUN[HOURLY_RUN_TAG])
RAW_HOURLY = RAW_EVENTS | RAW_OBSERVATIONS

# Partitioning is inferred from the selected assets: all share `hourly_partitions`.
raw_hourly_job = dg.define_asset_job("raw_hourly_job", selection=RAW_HOURLY)
raw_events_job = dg.define_asset_job("raw_events_job", selection=RAW_EVENTS)
relay_catalog_job = dg.define_asset_job(
    "relay_catalog_job", selection=dg.AssetSelection.assets(["raw", "relay_catalog"])
)

# Ten minutes after the hour closes: relays receive events a little late, and clients with
# slow clocks publish a few seconds into the next hour.
SETTLING_MINUTES = 10


def closed_hour_key(tick: datetime) -> str:
    """The partition of the hour that closed before ``tick``."""
    hour = tick.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return hour.strftime("%Y-%m-%d-%H:%M")


@dg.schedule(
    cron_schedule=f"{SETTLING_MINUTES} * * * *",
    target=RAW_HOURLY,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def hourly_raw_schedule(context: dg.ScheduleEvaluationContext):
    """The hour just closed: its events in one run, its relay snapshot and geolocation in
    another, so that a failed fetch (say, no relay reached, a blocking check) cannot stop the
    snapshot that records the outage."""
    key = closed_hour_key(context.scheduled_execution_time)
    graph = context.repository_def.asset_graph
    return [
        dg.RunRequest(
            run_key=f"events-{key}",
            partition_key=key,
            asset_selection=sorted(RAW_EVENTS.resolve(graph), key=str),
        ),
        dg.RunRequest(
            run_key=f"snapshots-{key}",
            partition_key=key,
            asset_selection=sorted(RAW_OBSERVATIONS.resolve(graph), key=str),
        ),
    ]


# NIP-59 gift wraps carry a created_at randomised up to two days into the past, so the hour
# from 48 hours ago is fetched again once everything that claims it has been published.
LATE_EVENTS_LAG = timedelta(hours=48)


def late_partition_key(now: datetime) -> str:
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - LATE_EVENTS_LAG
    return hour.strftime("%Y-%m-%d-%H:%M")


@dg.sensor(
    job=raw_events_job,
    minimum_interval_seconds=15 * 60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def late_events_sensor(context: dg.SensorEvaluationContext, duckdb: WarehouseResource):
    """Re-fetches the hour from 48 hours ago once, for late events (gift wraps are backdated)."""
    key = late_partition_key(datetime.now(UTC))
    first = hourly_partitions.get_first_partition_key()
    if first is None or key < first:
        return dg.SkipReason(f"{key} is before the first partition")
    if catalog_size(duckdb) == 0:
        return dg.SkipReason("the relay catalog is empty: materialise raw/relay_catalog first")
    # The run key makes each hour's re-fetch happen once, however often the sensor ticks.
    return dg.RunRequest(run_key=f"late-events-{key}", partition_key=key)


@dg.sensor(
    job=relay_catalog_job,
    minimum_interval_seconds=15 * 60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def relay_discovery_sensor(
    context: dg.SensorEvaluationContext,
    duckdb: WarehouseResource,
    relay_sources: RelaySourcesResource,
):
    """Adds relays that stored events mention (kind 10002, kind-3 maps, tag hints) to the
    catalog, by materialising raw/relay_catalog when any is missing from it."""
    if not duckdb.exists():
        return dg.SkipReason("no warehouse yet: materialise raw/relay_catalog first")
    try:
        with duckdb.get_connection(read_only=True) as conn:
            tables = {
                t
                for (t,) in conn.execute(
                    "select table_name from information_schema.tables where table_schema = 'raw'"
                ).fetchall()
            }
            if not {"nostr_events", "relay_catalog"} <= tables:
                return dg.SkipReason("no events or catalog stored yet")
            # The catalog's own bound per event: a URL it would not take is not "new".
            discovered = read_discovered_relays(conn, relay_sources.urls_per_event).urls
            known = {
                url for (url,) in conn.execute("select relay_url from raw.relay_catalog").fetchall()
            }
    except (IOException, CatalogException) as busy:
        # A writer holds the file (DuckDB allows one writing process): try next tick.
        return dg.SkipReason(f"warehouse not readable now: {busy}")
    new = sorted(set(discovered) - known)
    if not new:
        return dg.SkipReason(f"no new relays among {len(discovered)} discovered")
    context.log.info(f"{len(new)} new relays, e.g. {new[:5]}")
    return dg.RunRequest(run_key=f"discovered-{len(known)}-{new[0]}")


def catalog_size(warehouse: WarehouseResource) -> int | None:
    """Relays in the catalog; 0 when there is no warehouse yet, None when it is busy (a
    writer holds DuckDB's lock), in which case callers go ahead and let the run queue."""
    if not warehouse.exists():
        return 0
    try:
        with warehouse.get_connection(read_only=True) as conn:
            return scalar(conn, "select count(*) from raw.relay_catalog")
    except CatalogException:
        return 0
    except IOException:
        return None


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)
