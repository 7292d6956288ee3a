"""dbt models as Dagster assets: the hourly models per partition window, the rest after.

Each dbt source is the same node as the Python asset that fills it (`raw/<table>`), so the UI
shows one lineage graph from the relay list to the marts; dbt tests arrive as asset checks.

The models tagged `hourly` (the staging views over the hourly raw tables and the hourly
incremental marts) are partitioned like the raw tables, so an hour maps 1:1 from raw to marts:
a backfill of a range carries every hour through, and automation rebuilds exactly the hours
that landed. Views hold no rows of their own; their partitions record which hours of the raw
table they have been rebuilt over.
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.core.dbt_event_iterator import _fetch_row_count_metadata
from dbt.adapters.duckdb.connections import DuckDBConnectionManager

from nostr_assets.defs.conditions import HOURLY_MODEL, whole_model
from nostr_assets.defs.dbt.project import dbt_project
from nostr_assets.defs.freshness import DAILY_FRESHNESS, HOURLY_FRESHNESS
from nostr_assets.defs.partitions import hourly_partitions, single_run
from nostr_assets.defs.writers import DBT_POOL, DBT_RETRY

# Two dbt steps in a run, in this order: the hourly models (staging over the hourly raw tables,
# then the hourly marts), then everything else, which reads them. No model of the second step
# feeds one of the first.
HOURLY_SELECT = "tag:hourly"
# dbt's default (eager) would run, in the hourly step, a test that also reads a model built
# only in the later step; "buildable" keeps a test until every model it reads exists.
BUILD = ["build", "--indirect-selection", "buildable"]
# The raw tables landed per hour by Python assets (the catalog is the only other source).
HOURLY_SOURCES = {
    "nostr_events",
    "event_relay_sightings",
    "relay_fetch_stats",
    "relay_snapshots",
    "relay_geolocations",
}


class RunDbtConfig(dg.Config):
    full_refresh: bool = False  # rebuild incremental models from all history


class NostrDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Keys are made here, not only in get_asset_spec: dagster-dbt also calls get_asset_key
        # by itself, e.g. for the observations it logs for a dbt test that is not an asset
        # check of the step that ran it. Keys made elsewhere showed up as phantom assets.
        if dbt_resource_props["resource_type"] == "source":
            # Python assets land `raw.<table>`; their keys mirror it.
            return dg.AssetKey(["raw", dbt_resource_props["name"]])
        return dg.AssetKey([_layer(dbt_resource_props), dbt_resource_props["name"]])

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec
        hourly = "hourly" in props.get("tags", [])
        return spec.replace_attributes(
            group_name=_layer(props),
            automation_condition=(
                HOURLY_MODEL if hourly else whole_model(self._hourly_assets(manifest, project))
            ),
            freshness_policy=HOURLY_FRESHNESS if hourly else DAILY_FRESHNESS,
        )

    def _hourly_assets(
        self, manifest: Mapping[str, Any], project: DbtProject | None
    ) -> dg.AssetSelection:
        """Every hourly partitioned asset a dbt model can read: raw tables and hourly models
        (worked out once per manifest, not once per model)."""
        cached = getattr(self, "_hourly_cache", None)
        if cached is None or cached[0] is not manifest:
            keys = [dg.AssetKey(["raw", name]) for name in sorted(HOURLY_SOURCES)]
            for unique_id, node in manifest["nodes"].items():
                if node["resource_type"] == "model" and "hourly" in node.get("tags", []):
                    keys.append(self.get_asset_spec(manifest, unique_id, project).key)
            cached = self._hourly_cache = (manifest, dg.AssetSelection.assets(*keys))
        return cached[1]


def _layer(props: Mapping[str, Any]) -> str:
    """The models/ folder a model lives in (staging, intermediate, marts), else `dbt`."""
    fqn = props.get("fqn", [])
    return fqn[1] if len(fqn) > 2 else "dbt"


translator = NostrDbtTranslator()


def _window_vars(context: dg.AssetExecutionContext) -> list[str]:
    window = context.partition_time_window
    fmt = "%Y-%m-%d %H:%M:%S"  # no UTC offset: dbt compares it with naive UTC timestamps
    return [
        "--vars",
        json.dumps(
            {"window_start": window.start.strftime(fmt), "window_end": window.end.strftime(fmt)}
        ),
    ]


def release_duckdb() -> None:
    """Close the DuckDB file that dbt-duckdb holds open in this process, if it holds one.

    dbt-duckdb keeps its DuckDB instance open for the life of the process (its `keep_open`
    defaults to true). Anything else in the process that opens the file with another
    configuration, or a dbt subprocess that wants to write it, is refused until it is closed.
    """
    try:
        environment = DuckDBConnectionManager.env()
    except Exception:  # dbt-duckdb raises a bare Exception when nothing was opened
        return
    environment.close()
    DuckDBConnectionManager.close_all_connections()


def build_with_row_counts(dbt: DbtCliResource, args: list[str], context: dg.AssetExecutionContext):
    """dbt's events for the UI, with the row count of every table built.

    dagster-dbt counts the rows through dbt's adapter in this process, once dbt has exited
    (DuckDB allows one writing process). The adapter's DuckDB instance is closed afterwards,
    so that the run's next dbt step, a subprocess, can open the file.
    """
    invocation = dbt.cli(args, context=context)
    try:
        # What `stream().fetch_row_counts()` does, without its wait: dagster-dbt 0.29 tails
        # dbt's events through dagster's `imap`, which polls an empty queue in a loop for as
        # long as dbt runs (DuckDB makes it wait for dbt's end), a core burnt per dbt step
        # (15 million polls, 33 s of CPU over two steps of the lake test). Here the events are
        # gathered while dbt runs, then counted one by one, as dagster-dbt counts them.
        events = []
        try:
            for event in invocation.stream():
                events.append(event)
        finally:
            # dbt's events up to a failure still reach the UI, with their counts, before it.
            for event in events:
                counts = _fetch_row_count_metadata(invocation, event)
                yield event.with_metadata({**event.metadata, **counts}) if counts else event
    finally:
        if invocation.adapter is not None:
            invocation.adapter.cleanup_connections()
        release_duckdb()


@single_run(
    dbt_assets,
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=HOURLY_SELECT,
    dagster_dbt_translator=translator,
    partitions_def=hourly_partitions,
    pool=DBT_POOL,
    retry_policy=DBT_RETRY,
    name="dbt_hourly_models",
)
def dbt_hourly_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: RunDbtConfig):
    """The staging views over the hourly raw tables and the hourly incremental marts, rebuilt
    for the run's whole partition window at once."""
    args = [*BUILD, *_window_vars(context)]
    if config.full_refresh:
        args.append("--full-refresh")
    yield from build_with_row_counts(dbt, args, context)


@single_run(
    dbt_assets,
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # Selected by folder, not as "all but hourly": dagster-dbt resolves the selection with
    # eager indirect selection, under which excluding the hourly staging views would also drop
    # every test that reads one (int_event_deletions' relationships test), which then ran as
    # no check and logged observations of phantom assets. Only the hourly marts are excluded.
    select="path:models/intermediate path:models/marts stg_nostr__relay_catalog",
    exclude="path:models/marts,tag:hourly",
    dagster_dbt_translator=translator,
    pool=DBT_POOL,
    retry_policy=DBT_RETRY,
    name="dbt_models",
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: RunDbtConfig):
    """The catalog's staging view, the intermediate tables and the marts without partitions,
    rebuilt in full."""
    args = list(BUILD)
    if config.full_refresh:
        args.append("--full-refresh")
    yield from build_with_row_counts(dbt, args, context)
