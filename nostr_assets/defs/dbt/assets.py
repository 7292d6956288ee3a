"""dbt models as Dagster assets: hourly incremental models per partition window, the rest after.

Each dbt source is the same node as the Python asset that fills it (`raw/<table>`), so the UI
shows one lineage graph from the relay list to the marts; dbt tests arrive as asset checks.
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from nostr_assets.defs.dbt.project import dbt_project
from nostr_assets.defs.freshness import DAILY_FRESHNESS, HOURLY_FRESHNESS
from nostr_assets.defs.partitions import hourly_partitions

# Three dbt steps in a run, in this order, so no step has to run both before and after another:
# staging views (over raw), the hourly incremental models (over staging), then everything else.
STAGING_SELECT = "path:models/staging"
HOURLY_SELECT = "tag:hourly"
# dbt's default (eager) would run, in the staging step, a test that also reads a model built
# only in a later step; "buildable" keeps a test until every model it reads exists.
BUILD = ["build", "--indirect-selection", "buildable"]


class RunDbtConfig(dg.Config):
    full_refresh: bool = False  # rebuild incremental models from all history


class NostrDbtTranslator(DagsterDbtTranslator):
    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            # Python assets land `raw.<table>`; their keys mirror it.
            return spec.replace_attributes(key=dg.AssetKey(["raw", props["name"]]))
        hourly = "hourly" in props.get("tags", [])
        layer = props.get("fqn", ["", "marts"])[1] if len(props.get("fqn", [])) > 2 else "dbt"
        return spec.replace_attributes(
            key=dg.AssetKey([layer, props["name"]]),
            group_name=layer,
            automation_condition=dg.AutomationCondition.eager(),
            freshness_policy=HOURLY_FRESHNESS if hourly else DAILY_FRESHNESS,
        )


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


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=HOURLY_SELECT,
    dagster_dbt_translator=translator,
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    name="dbt_hourly_models",
)
def dbt_hourly_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: RunDbtConfig):
    """The hourly incremental models, rebuilt for the run's whole partition window at once."""
    args = [*BUILD, *_window_vars(context)]
    if config.full_refresh:
        args.append("--full-refresh")
    yield from dbt.cli(args, context=context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=STAGING_SELECT,
    dagster_dbt_translator=translator,
    pool="duckdb",
    # Unpartitioned, but a CLI partition range may select them only with this policy.
    backfill_policy=dg.BackfillPolicy.single_run(),
    name="dbt_staging_models",
)
def dbt_staging_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Typed, renamed views over every raw table."""
    yield from dbt.cli(BUILD, context=context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=f"{HOURLY_SELECT} {STAGING_SELECT}",
    dagster_dbt_translator=translator,
    pool="duckdb",
    backfill_policy=dg.BackfillPolicy.single_run(),
    name="dbt_models",
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: RunDbtConfig):
    """Intermediate tables and the non-partitioned marts, rebuilt in full."""
    args = list(BUILD)
    if config.full_refresh:
        args.append("--full-refresh")
    yield from dbt.cli(args, context=context).stream()
