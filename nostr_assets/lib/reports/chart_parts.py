"""What every dashboard chart shares: its panel, the page's sizes and colours, the hour and day
axes every chart of its kind aligns on, the empty state, and the PNG rendering."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import altair as alt
import vl_convert

from nostr_assets.lib.reports.dashboard_data import DashboardData
from nostr_assets.lib.reports.dashboard_tables import DAYS_SHOWN

# The Vega-Lite version Altair writes specifications for ("v6.4.1" -> "6.4"): the page's
# JavaScript and the PNGs compile them with it, not with whatever vl-convert has newest.
VEGA_LITE_VERSION = alt.SCHEMA_VERSION.removeprefix("v").rsplit(".", 1)[0]
WIDTH = 400  # two charts side by side in a 1200-pixel window, axes and legends included
WIDE = 960
HEIGHT = 220
ROW_HEIGHT = 14  # per relay in the heatmap and the bar lists
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
UP, DOWN = "#2e9d5b", "#d9534f"
ACCENT = "#5b4b9a"
# The daily tables and their day column: their charts share one time axis.
DAILY = (
    ("active_authors", "activity_date"),
    ("zaps_daily", "zap_date"),
    ("long_form_daily", "published_date"),
)
MIN_DAYS = 7

# Any top-level Vega-Lite chart: a chart, a layer, a concatenation.
Chart = alt.TopLevelMixin


@dataclass(frozen=True)
class Panel:
    """One chart of the page: the question it answers, and what to know to read it."""

    key: str
    title: str
    question: str
    chart: Chart
    is_empty: bool
    notes: tuple[str, ...] = ()
    wide: bool = False

    def spec(self) -> dict[str, Any]:
        """The Vega-Lite specification, data included, as the page embeds it."""
        return self.chart.to_dict()


def nothing_to_show(data: DashboardData, mart: str, what: str, over_time: bool = True) -> str:
    """The empty state's sentence: the mart is not built yet, or has no rows to show."""
    if mart in data.missing_marts:
        return f"No {what} yet: dbt has not built {mart}"
    if over_time and data.latest_hour is None:
        return f"No {what} yet: no hour of events or relay snapshots has landed"
    return f"No {what} in {mart}" + (" for the time shown" if over_time else " yet")


def empty_chart(message: str, width: int = WIDTH) -> alt.Chart:
    """A chart that only says why there is nothing to draw."""
    return (
        alt.Chart(alt.Data(values=[{"message": message}]))
        .mark_text(fontSize=14, color="#666")
        .encode(text="message:N")
        .properties(width=width, height=80)
    )


def _ms(moment: datetime) -> float:
    # Vega-Lite takes a time scale's domain as milliseconds since the epoch.
    return moment.timestamp() * 1000


def hour_axis(field: str, data: DashboardData) -> alt.X:
    """The hours shown, in UTC, the same on every hourly chart."""
    assert data.first_hour is not None and data.latest_hour is not None
    end = data.latest_hour + timedelta(hours=1)
    return alt.X(
        f"utcyearmonthdatehours({field}):T",
        title="hour (UTC)",
        scale=alt.Scale(domain=[_ms(data.first_hour), _ms(end)]),
        axis=alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=8),
    )


# Counts are whole: no axis tick at 0.5 relay.
COUNT_AXIS = alt.Axis(format="d", tickMinStep=1)


def day_axis(field: str, data: DashboardData, middle: bool = False) -> alt.X:
    """The days shown, in UTC, the same on every daily chart: from the first day with data
    (at most DAYS_SHOWN back) to the latest hour's day, and never fewer than MIN_DAYS, so that a
    single day is a bar, not the whole width. ``middle`` puts points at the middle of their day,
    over its bar."""
    last = (data.latest_hour or data.built_at).date()
    first = min(
        (date.fromisoformat(row[column]) for table, column in DAILY for row in data.tables[table]),
        default=last,
    )
    first = min(
        max(first, last - timedelta(days=DAYS_SHOWN - 1)), last - timedelta(days=MIN_DAYS - 1)
    )
    domain = [_ms(datetime.combine(day, time(), UTC)) for day in (first, last + timedelta(days=1))]
    return alt.X(
        f"utcyearmonthdate({field}):T",
        title="day (UTC)",
        scale=alt.Scale(domain=domain),
        axis=alt.Axis(format="%b %d", labelAngle=0),
        bandPosition=0.5 if middle else alt.Undefined,
    )


def chart_png(panel: Panel, scale: float = 1.0) -> bytes:
    """The chart as a PNG, drawn by vl-convert's own Vega (no browser)."""
    return vl_convert.vegalite_to_png(panel.spec(), vl_version=VEGA_LITE_VERSION, scale=scale)
