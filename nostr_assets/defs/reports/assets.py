"""reports/network_dashboard: the network at a glance, one HTML file that needs no network.

Downstream of every mart it reads, so the lineage graph shows what it depends on and automation
redraws it after they change; its materialization shows the key charts as pictures in the UI.
"""

import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from nostr_assets.defs.conditions import REPORT
from nostr_assets.defs.freshness import DAILY_FRESHNESS
from nostr_assets.defs.resources import DashboardResource, WarehouseResource
from nostr_assets.lib.reports.mart_reader import MARTS

if TYPE_CHECKING:
    from nostr_assets.lib.reports.dashboard import Dashboard


def build_from(warehouse: WarehouseResource, world_atlas: Path, built_at: datetime) -> "Dashboard":
    """The dashboard of the warehouse's marts; of none when there is no warehouse file yet."""
    # Imported here, not at the top: Altair and vl-convert take 0.6 s to import, and every run
    # of every asset loads this module with the rest of the code location.
    from nostr_assets.lib.reports.dashboard import build_dashboard

    if not warehouse.exists():
        return build_dashboard(None, built_at, world_atlas)
    # Read-only: the page writes nothing to the warehouse, and a reader cannot create tables
    # in a warehouse nobody has filled.
    with warehouse.get_connection(read_only=True) as conn:
        return build_dashboard(conn, built_at, world_atlas)


def png_markdown(title: str, png: bytes) -> dg.MetadataValue:
    # Inline, as Dagster's own tutorials show plots: the UI renders it under the materialization.
    return dg.MetadataValue.md(
        f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"
    )


@dg.asset(
    key=["reports", "network_dashboard"],
    deps=[["marts", mart] for mart in MARTS],
    group_name="reports",
    kinds={"python", "duckdb", "html"},
    automation_condition=REPORT,
    freshness_policy=DAILY_FRESHNESS,
    # It only reads, but DuckDB refuses a reader while another process writes: it takes its
    # turn with the steps that write.
    pool="duckdb",
)
def network_dashboard(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, dashboard: DashboardResource
) -> dg.MaterializeResult:
    """One HTML page (one file, rebuilt in full; NOSTR_DASHBOARD_PATH) drawn from the marts: relays
    by country on a world map, events per hour by kind, active and new authors, relay uptime by
    hour, relay coverage and replication, NIP support, relay software, zaps and long-form
    articles per day, over the latest 168 hours and 90 days. Opens with no network."""
    started = time.perf_counter()
    page = build_from(duckdb, dashboard.world_atlas_path(), datetime.now(UTC))
    path = dashboard.html_path()
    from nostr_assets.lib.reports.dashboard_page import write_atomically

    size = write_atomically(path, page.html)
    data = page.data
    if page.outlines.topology is None:
        context.log.warning(f"Map without country outlines: {page.outlines.why_missing}")
    empty = [panel.key for panel in page.panels if panel.is_empty]
    metadata: dict[str, dg.RawMetadataValue] = {
        "path": dg.MetadataValue.path(str(path)),
        "size_bytes": size,
        "hours_covered": data.hours_covered,
        "hours": data.covered_text(),
        "latest_hour": data.latest_hour.isoformat() if data.latest_hour else "none yet",
        "empty_charts": ", ".join(empty) or "none",
        "missing_marts": ", ".join(data.missing_marts) or "none",
        "country_outlines": "embedded" if page.outlines.topology else page.outlines.why_missing,
    }
    # The key figures, as numbers: the UI plots each across materializations.
    metadata.update({f.key: f.value for f in data.figures if f.value is not None})
    for key, (title, png) in page.key_pngs().items():
        metadata[f"chart_{key}"] = png_markdown(title, png)
    metadata["build_seconds"] = round(time.perf_counter() - started, 2)
    return dg.MaterializeResult(metadata=metadata)
