"""Protects reports/network_dashboard as Dagster runs it: materialised over a warehouse with marts
it writes the page where the resource says and shows the key charts as images, the file's path
and size and the hours covered; over an empty warehouse (no file, or marts not built) the page
is still written with every chart's empty state. Automation rebuilds it once after a mart
updates, hourly or not, and leaves it alone otherwise.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dashboard_page_reader import read_page

from nostr_assets.defs.reports.assets import network_dashboard
from nostr_assets.defs.resources import DashboardResource, WarehouseResource
from nostr_assets.lib.reports.dashboard_charts import KEY_CHARTS
from nostr_assets.lib.reports.mart_reader import MARTS
from nostr_assets.lib.warehouse.schema import ensure_raw_tables

pytestmark = pytest.mark.slow  # dbt builds the marts; Dagster runs the asset

DASHBOARD = dg.AssetKey(["reports", "network_dashboard"])
PNG = re.compile(r"^!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def materialize(database: Path, page: Path) -> dict:
    result = dg.materialize(
        [network_dashboard],
        resources={
            "duckdb": WarehouseResource(database=str(database)),
            "dashboard": DashboardResource(path=str(page)),
        },
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == DASHBOARD
    return event.materialization.metadata


def assert_images_and_file(metadata: dict, page: Path) -> None:
    assert metadata["path"] == dg.MetadataValue.path(str(page))
    assert metadata["size_bytes"].value == page.stat().st_size > 500_000
    for key in KEY_CHARTS:
        image = PNG.match(metadata[f"chart_{key}"].value)
        assert image, key
        assert base64.b64decode(image.group(1)).startswith(b"\x89PNG\r\n\x1a\n"), key


def test_materialized_over_the_marts(fixture_marts, tmp_path):
    page = tmp_path / "reports" / "network.html"
    metadata = materialize(fixture_marts, page)
    assert_images_and_file(metadata, page)
    assert metadata["hours_covered"].value == 27
    assert metadata["hours"].value == "2023-12-31 10:00 to 2024-01-01 13:00 UTC (27 h)"
    assert metadata["empty_charts"].value == "none"
    # The key figures as numbers, plotted by the UI across materializations.
    assert metadata["events_24h"].value == 23 and metadata["relays_reachable"].value == 2
    contents = read_page(page.read_text(encoding="utf-8"))
    assert contents.figures["events_24h"] == "23"
    assert not list(page.parent.glob("*.tmp"))


def test_materialized_without_a_warehouse(tmp_path):
    page = tmp_path / "network.html"
    metadata = materialize(tmp_path / "absent.duckdb", page)
    assert_images_and_file(metadata, page)
    assert not (tmp_path / "absent.duckdb").exists()  # a report does not create a warehouse
    assert metadata["hours_covered"].value == 0
    assert metadata["empty_charts"].value.split(", ") == list(read_page(page.read_text()).charts)


def test_materialized_over_marts_not_built_or_empty(fixture_marts, tmp_path):
    raw_only = tmp_path / "fresh.duckdb"  # not raw.duckdb: its catalog would be "raw" too
    with duckdb.connect(str(raw_only)) as conn:
        ensure_raw_tables(conn)
    metadata = materialize(raw_only, tmp_path / "fresh.html")
    assert metadata["missing_marts"].value == ", ".join(MARTS)
    assert len(metadata["empty_charts"].value.split(", ")) == 10

    emptied = tmp_path / "emptied.duckdb"
    emptied.write_bytes(fixture_marts.read_bytes())
    with duckdb.connect(str(emptied)) as conn:
        for mart in MARTS:
            conn.execute(f"delete from {mart}")
    page = tmp_path / "emptied.html"
    metadata = materialize(emptied, page)
    assert metadata["missing_marts"].value == "none"
    assert len(metadata["empty_charts"].value.split(", ")) == 10
    contents = read_page(page.read_text())
    assert set(contents.figure_texts.values()) == {"no data"}


# --------------------------------------------------------------------------------------------
# Automation, tick by tick, over the project's whole graph


@pytest.fixture(scope="module")
def defs():
    from nostr_assets.definitions import defs as load_definitions

    return load_definitions()


def tick(defs, instance, cursor):
    """One evaluation; what it requests is then recorded as materialized, as its runs would."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    requested = set()
    for entity in result.results:
        subset = entity.true_subset
        if subset.size == 0 or not isinstance(entity.key, dg.AssetKey):
            continue
        partitions = (
            subset.expensively_compute_partition_keys() if subset.is_partitioned else [None]
        )
        for partition in partitions:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(entity.key, partition=partition)
            )
        requested.add(entity.key)
    return requested, result.cursor


def test_automation_redraws_once_after_the_marts_update(defs):
    graph = defs.resolve_asset_graph()
    assert set(graph.get(DASHBOARD).parent_keys) == {dg.AssetKey(["marts", m]) for m in MARTS}
    with dg.instance_for_test() as instance:
        requested, cursor = tick(defs, instance, None)
        assert requested == set()  # nothing has landed: nothing to draw
        # An unpartitioned mart rebuilt: one redraw, then quiet.
        instance.report_runless_asset_event(dg.AssetMaterialization(["marts", "fct_zaps_daily"]))
        requested, cursor = tick(defs, instance, cursor)
        assert requested == {DASHBOARD}
        requested, cursor = tick(defs, instance, cursor)
        assert requested == set()
        # An hour of an hourly mart: one redraw again, whatever other hours are missing.
        instance.report_runless_asset_event(
            dg.AssetMaterialization(["marts", "fct_events_hourly"], partition="2024-01-01-10:00")
        )
        requested, cursor = tick(defs, instance, cursor)
        assert requested == {DASHBOARD}
        requested, cursor = tick(defs, instance, cursor)
        assert requested == set()
        # A new relay catalog: the marts over it are requested first, the page waits for them
        # and is drawn once, on the next tick.
        instance.report_runless_asset_event(dg.AssetMaterialization(["raw", "relay_catalog"]))
        requested, cursor = tick(defs, instance, cursor)
        assert dg.AssetKey(["marts", "fct_relays_by_country"]) in requested
        assert DASHBOARD not in requested
        requested, cursor = tick(defs, instance, cursor)
        assert requested == {DASHBOARD}
        requested, cursor = tick(defs, instance, cursor)
        assert requested == set()
