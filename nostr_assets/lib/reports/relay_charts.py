"""The dashboard's charts about relays: where they are, whether they answer, what they hold,
what they run."""

from __future__ import annotations

from typing import Any

import altair as alt

from nostr_assets.lib.reports.chart_parts import (
    ACCENT,
    COUNT_AXIS,
    DOWN,
    HEIGHT,
    ROW_HEIGHT,
    UP,
    WIDE,
    WIDTH,
    Chart,
    Panel,
    empty_chart,
    hour_axis,
    nothing_to_show,
)
from nostr_assets.lib.reports.country_outlines import COUNTRIES_OBJECT, CountryOutlines
from nostr_assets.lib.reports.dashboard_data import DashboardData
from nostr_assets.lib.reports.dashboard_tables import RELAYS_SHOWN

# Equal Earth is 2.05 times as wide as tall: the whole globe at the page's width.
MAP_HEIGHT = round(WIDE / 2.05)


def world_map(data: DashboardData, outlines: CountryOutlines) -> Panel:
    located = [r for r in data.tables["relays_by_country"] if r["latitude"] is not None]
    if outlines.topology is not None:
        countries = alt.Data(
            values=outlines.topology,
            format=alt.DataFormat(type="topojson", feature=COUNTRIES_OBJECT),
        )
        background = [
            alt.Chart(alt.sphere()).mark_geoshape(fill="#f3f6fa"),
            alt.Chart(countries).mark_geoshape(fill="#dde3ea", stroke="#ffffff", strokeWidth=0.5),
        ]
        notes = ["Country outlines: Natural Earth, via world-atlas (ISC)."]
    else:
        background = [
            alt.Chart(alt.sphere()).mark_geoshape(fill="#f3f6fa"),
            alt.Chart(alt.graticule()).mark_geoshape(stroke="#c9d2dc", strokeWidth=0.5),
        ]
        notes = [f"No country outlines: {outlines.why_missing}. Bubbles on a plain globe."]
    if data.relays_not_located:
        count = data.relays_not_located
        notes.append(
            f"{count:,} reachable relay{'' if count == 1 else 's'} could not be located "
            "(no GeoIP match for the address)."
        )
    bubbles = (
        alt.Chart(alt.Data(values=located))
        .mark_circle(color=ACCENT, opacity=0.7, stroke="white", strokeWidth=0.5)
        .encode(
            longitude="longitude:Q",
            latitude="latitude:Q",
            size=alt.Size(
                "reachable_relays:Q",
                title="reachable relays",
                scale=alt.Scale(range=[30, 1500], zero=False),
                legend=alt.Legend(format="d", orient="bottom-left"),
            ),
            tooltip=[
                alt.Tooltip("country_name:N", title="country"),
                alt.Tooltip("reachable_relays:Q", title="reachable relays"),
            ],
        )
    )
    message = nothing_to_show(data, "fct_relays_by_country", "located relays", over_time=False)
    marks = bubbles if located else empty_chart(message)
    chart: Chart = (
        alt.layer(*background, marks)
        .project("equalEarth")
        .properties(width=WIDE, height=MAP_HEIGHT)
    )
    return Panel(
        "relay_map",
        "Where reachable relays are",
        "In which countries do the relays that answered at their latest snapshot run?",
        chart,
        not located,
        tuple(notes),
        wide=True,
    )


UPTIME_TITLE = "Relay uptime"
UPTIME_QUESTION = "Which relays answer, hour by hour, and how often over 24 hours and 7 days?"


def relay_uptime(data: DashboardData) -> Panel:
    relays, hours = data.tables["uptime_relays"], data.tables["uptime_hours"]
    if not hours:
        message = nothing_to_show(data, "fct_relay_health_hourly", "relay snapshots")
        chart: Chart = empty_chart(message, WIDE)
        return Panel("relay_uptime", UPTIME_TITLE, UPTIME_QUESTION, chart, True, wide=True)
    order = [r["relay_url"] for r in relays]
    height = ROW_HEIGHT * len(order)
    y = alt.Y("relay_url:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    heatmap = (
        alt.Chart(alt.Data(values=hours))
        .mark_rect()
        .encode(
            x=hour_axis("snapshot_hour", data),
            y=y,
            color=alt.Color(
                "is_reachable:N",
                title="reachable",
                scale=alt.Scale(domain=[True, False], range=[UP, DOWN]),
                legend=alt.Legend(labelExpr="datum.value ? 'yes' : 'no'", orient="top"),
            ),
            tooltip=["relay_url:N", "utcyearmonthdatehours(snapshot_hour):T", "is_reachable:N"],
        )
        .properties(width=WIDE - 460, height=height)
    )
    uptime = (
        alt.Chart(alt.Data(values=relays))
        .transform_fold(["uptime_24h", "uptime_7d"], as_=["window", "uptime"])
        .mark_text(fontSize=11)
        .encode(
            x=alt.X(
                "window:N",
                title="uptime",
                axis=alt.Axis(
                    orient="top",
                    labelAngle=0,
                    labelExpr="datum.value == 'uptime_24h' ? '24 h' : '7 d'",
                ),
            ),
            y=alt.Y("relay_url:N", sort=order, axis=None),
            text=alt.Text("uptime:Q", format=".0%"),
            color=alt.Color(
                "uptime:Q", scale=alt.Scale(domain=[0, 1], range=[DOWN, UP]), legend=None
            ),
        )
        .properties(width=90, height=height)
    )
    shown = (
        f"the {len(order)} relays that held the most events"
        if len(order) == RELAYS_SHOWN
        else (f"all {len(order)} relays probed")
    )
    return Panel(
        "relay_uptime",
        UPTIME_TITLE,
        UPTIME_QUESTION,
        alt.hconcat(heatmap, uptime, spacing=8),
        False,
        (f"Shown: {shown}. Uptime counts the snapshots taken; hours without one are unknown.",),
        wide=True,
    )


def relay_coverage(data: DashboardData) -> Panel:
    rows = data.tables["relay_coverage"]
    order = [r["relay_url"] for r in rows]
    y = alt.Y("relay_url:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    tooltip: list[Any] = [
        "relay_url:N",
        alt.Tooltip("events_held:Q", title="events held"),
        alt.Tooltip("share_of_events:Q", title="share of all events", format=".1%"),
        alt.Tooltip("exclusive_events:Q", title="held by no other relay"),
    ]
    base = alt.Chart(alt.Data(values=rows)).encode(y=y, tooltip=tooltip)
    chart: Chart = (
        alt.layer(
            base.mark_bar(color="#b8c4e0").encode(
                x=alt.X("events_held:Q", title="events", axis=COUNT_AXIS)
            ),
            base.mark_bar(color=ACCENT).encode(x="exclusive_events:Q"),
            base.mark_text(align="left", dx=3, fontSize=10).encode(
                x="events_held:Q", text=alt.Text("share_of_events:Q", format=".0%")
            ),
        ).properties(width=WIDTH - 220, height=ROW_HEIGHT * len(rows))
        if rows
        else empty_chart(nothing_to_show(data, "fct_relay_coverage", "sightings", False))
    )
    return Panel(
        "relay_coverage",
        "Relay coverage",
        "Which relays hold the most events, and how many events would be lost without them?",
        chart,
        not rows,
        (
            "Light bar: events held (label: share of all events). Dark bar: events no other "
            "relay held.",
        ),
    )


def replication(data: DashboardData) -> Panel:
    rows = data.tables["replication"]
    chart: Chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(color=ACCENT)
        .encode(
            x=alt.X(
                "relay_count:O", title="relays an event was seen on", axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("events:Q", title="events", axis=COUNT_AXIS),
            tooltip=["relay_count:O", "events:Q"],
        )
        .properties(width=WIDTH, height=HEIGHT)
        if rows
        else empty_chart(nothing_to_show(data, "fct_event_replication", "sightings", False))
    )
    return Panel(
        "replication",
        "Replication",
        "On how many relays is each event found?",
        chart,
        not rows,
    )


def nip_support(data: DashboardData) -> Panel:
    rows = data.tables["nip_support"]
    chart: Chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(color=ACCENT)
        .encode(
            x=alt.X("nip:O", title="NIP", axis=alt.Axis(labelAngle=0), sort="ascending"),
            y=alt.Y("share_of_relays:Q", title="share of relays", axis=alt.Axis(format="%")),
            tooltip=[
                "nip:O",
                alt.Tooltip("relays_supporting:Q", title="relays supporting"),
                alt.Tooltip("relays_with_nip11:Q", title="relays with NIP-11"),
                alt.Tooltip("share_of_relays:Q", format=".0%"),
            ],
        )
        .properties(width=WIDTH, height=HEIGHT)
        if rows
        else empty_chart(nothing_to_show(data, "fct_nip_support", "NIP-11 documents", False))
    )
    return Panel(
        "nip_support",
        "NIP support",
        "Which NIPs do relays say they support (latest NIP-11 document)?",
        chart,
        not rows,
        ("Share of the relays that serve a NIP-11 document.",),
    )


def software(data: DashboardData) -> Panel:
    rows = data.tables["software"]
    chart: Chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(color=ACCENT)
        .encode(
            x=alt.X("relays:Q", title="relays", axis=COUNT_AXIS),
            y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
            tooltip=["software:N", "relays:Q", alt.Tooltip("versions:Q", title="versions")],
        )
        .properties(width=WIDTH - 200, height=ROW_HEIGHT * max(len(rows), 1) + 10)
        if rows
        else empty_chart(nothing_to_show(data, "fct_software_adoption", "NIP-11 documents", False))
    )
    return Panel(
        "software",
        "Relay software",
        "Which relay software runs the network (NIP-11 `software`, all versions)?",
        chart,
        not rows,
    )
