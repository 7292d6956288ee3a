"""The dashboard's charts, in the order the page shows them: one Vega-Lite chart (Altair) per
question, each with its data inline.

A chart whose rows are empty (a fresh warehouse, a mart dbt has not built) is replaced by a
chart that only says so, so the page and the PNGs always draw, and say why a picture is blank.
"""

from __future__ import annotations

from nostr_assets.lib.reports import activity_charts, relay_charts
from nostr_assets.lib.reports.chart_parts import Panel
from nostr_assets.lib.reports.country_outlines import CountryOutlines
from nostr_assets.lib.reports.dashboard_data import DashboardData

# The pictures that also go into the Dagster UI (the materialization's metadata).
KEY_CHARTS = ("relay_map", "events_by_kind", "relay_uptime", "active_authors")


def dashboard_panels(data: DashboardData, outlines: CountryOutlines) -> list[Panel]:
    """Every chart of the page, in the order shown."""
    return [
        relay_charts.world_map(data, outlines),
        activity_charts.events_by_kind(data),
        relay_charts.relay_uptime(data),
        activity_charts.active_authors(data),
        activity_charts.zaps(data),
        relay_charts.relay_coverage(data),
        relay_charts.replication(data),
        relay_charts.nip_support(data),
        relay_charts.software(data),
        activity_charts.long_form(data),
    ]
