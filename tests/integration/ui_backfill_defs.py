"""The project's own definitions with test resources, loaded as a code location by
`test_ui_backfill.py`: the warehouse, relay URLs and .mmdb files come from variables the test
sets (`UI_BACKFILL_*`), so the code location sees the test relays on 127.0.0.1."""

import os
from pathlib import Path

import dagster as dg
from dagster_env import graph_resources

from nostr_assets import definitions


@dg.definitions
def defs() -> dg.Definitions:
    project = definitions.defs()
    return dg.Definitions(
        assets=list(project.assets or []),
        asset_checks=list(project.asset_checks or []),
        resources=graph_resources(
            Path(os.environ["UI_BACKFILL_DATABASE"]),
            os.environ["UI_BACKFILL_RELAYS"].split(","),
            os.environ["UI_BACKFILL_CITY_DB"],
            os.environ["UI_BACKFILL_ASN_DB"],
        ),
        executor=dg.in_process_executor,
    )
