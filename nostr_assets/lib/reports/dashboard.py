"""The network dashboard in one call: the marts read, the charts drawn, the page written out as
text, and the key charts as PNGs for the Dagster UI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from nostr_assets.lib.reports.chart_parts import Panel, chart_png
from nostr_assets.lib.reports.country_outlines import CountryOutlines, read_country_outlines
from nostr_assets.lib.reports.dashboard_charts import KEY_CHARTS, dashboard_panels
from nostr_assets.lib.reports.dashboard_data import DashboardData, read_dashboard_data
from nostr_assets.lib.reports.dashboard_page import render_page, vega_javascript


@dataclass(frozen=True)
class Dashboard:
    data: DashboardData
    panels: list[Panel]
    outlines: CountryOutlines
    html: str

    def key_pngs(self, scale: float = 0.75) -> dict[str, tuple[str, bytes]]:
        """KEY_CHARTS as PNGs: key -> (title, image). Scaled down: they are stored in Dagster's
        event log at every build."""
        return {p.key: (p.title, chart_png(p, scale)) for p in self.panels if p.key in KEY_CHARTS}


def build_dashboard(
    conn: duckdb.DuckDBPyConnection | None, built_at: datetime, world_atlas: Path
) -> Dashboard:
    """The dashboard of the marts ``conn`` holds (None: no warehouse yet), drawn with the
    country outlines at ``world_atlas`` when that file is there."""
    data = read_dashboard_data(conn, built_at)
    outlines = read_country_outlines(world_atlas)
    panels = dashboard_panels(data, outlines)
    html = render_page(data, panels, outlines.topology is not None, vega_javascript())
    return Dashboard(data, panels, outlines, html)
