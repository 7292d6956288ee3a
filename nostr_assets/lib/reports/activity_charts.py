"""The dashboard's charts about what people publish: events by kind, authors, zaps, articles."""

from __future__ import annotations

import json

import altair as alt

from nostr_assets.lib.reports.chart_parts import (
    ACCENT,
    COUNT_AXIS,
    HEIGHT,
    WIDE,
    WIDTH,
    Chart,
    Panel,
    day_axis,
    empty_chart,
    hour_axis,
    nothing_to_show,
)
from nostr_assets.lib.reports.dashboard_data import DashboardData
from nostr_assets.lib.reports.dashboard_tables import KIND_LABELS, OTHER_KINDS

KIND_ORDER = [*KIND_LABELS.values(), OTHER_KINDS]


def events_by_kind(data: DashboardData) -> Panel:
    rows = data.tables["events_by_kind"]
    notes = []
    if data.events_after_latest_hour:
        notes.append(
            f"{data.events_after_latest_hour:,} events dated after the latest hour are not shown "
            "(clocks ahead, or hours with events but no relay snapshot)."
        )
    if rows:
        chart: Chart = (
            alt.Chart(alt.Data(values=rows))
            # Stacked in the legend's order, notes at the bottom.
            .transform_calculate(kind_rank=f"indexof({json.dumps(KIND_ORDER)}, datum.kind_group)")
            .mark_bar()
            .encode(
                x=hour_axis("event_hour", data),
                y=alt.Y("sum(events):Q", title="events", stack="zero"),
                color=alt.Color(
                    "kind_group:N",
                    title="kind",
                    sort=KIND_ORDER,
                    scale=alt.Scale(domain=KIND_ORDER, scheme="tableau10"),
                ),
                order=alt.Order("kind_rank:Q"),
                tooltip=[
                    alt.Tooltip("utcyearmonthdatehours(event_hour):T", title="hour (UTC)"),
                    alt.Tooltip("kind_group:N", title="kind"),
                    alt.Tooltip("events:Q"),
                ],
            )
            .properties(width=WIDE - 140, height=HEIGHT)
        )
    else:
        chart = empty_chart(nothing_to_show(data, "fct_events_hourly", "events"), WIDE)
    return Panel(
        "events_by_kind",
        "Events per hour, by kind",
        "How much is published each hour: notes, reactions, reposts, zaps, articles?",
        chart,
        not rows,
        tuple(notes),
        wide=True,
    )


def active_authors(data: DashboardData) -> Panel:
    rows = data.tables["active_authors"]
    chart: Chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=day_axis("activity_date", data, middle=True),
            y=alt.Y("authors:Q", title="authors", axis=COUNT_AXIS),
            color=alt.Color(
                "measure:N", title=None, sort=None, legend=alt.Legend(orient="bottom", columns=2)
            ),
            tooltip=["activity_date:T", "measure:N", "authors:Q"],
        )
        .properties(width=WIDTH, height=HEIGHT)
        if rows
        else empty_chart(nothing_to_show(data, "fct_active_pubkeys_daily", "authors"))
    )
    return Panel(
        "active_authors",
        "Active and new authors",
        "How many authors publish each day, in 7 and in 30 days, and how many are new?",
        chart,
        not rows,
        ("Gift wraps, seals, ephemeral kinds and events dated over an hour ahead are left out.",),
    )


def zaps(data: DashboardData) -> Panel:
    rows = data.tables["zaps_daily"]
    base = alt.Chart(alt.Data(values=rows)).encode(x=day_axis("zap_date", data))
    chart: Chart = (
        alt.layer(
            base.mark_bar(color="#f2a541", width=alt.RelativeBandSize(0.8)).encode(
                y=alt.Y(
                    "zaps:Q",
                    title="zap receipts",
                    axis=alt.Axis(titleColor="#c77d0a", format="d", tickMinStep=1),
                ),
                tooltip=["zap_date:T", "zaps:Q", "zaps_with_amount:Q"],
            ),
            base.mark_line(color=ACCENT, point=True).encode(
                x=day_axis("zap_date", data, middle=True),
                y=alt.Y(
                    "claimed_amount_sats:Q",
                    title="sats claimed",
                    axis=alt.Axis(titleColor=ACCENT, format="~s"),
                ),
                tooltip=["zap_date:T", alt.Tooltip("claimed_amount_sats:Q", format=",.0f")],
            ),
        )
        .resolve_scale(y="independent")
        .properties(width=WIDTH, height=HEIGHT)
        if rows
        else empty_chart(nothing_to_show(data, "fct_zaps_daily", "zaps"))
    )
    return Panel(
        "zaps",
        "Zaps per day",
        "How many zaps are sent each day, and how many sats do their invoices claim?",
        chart,
        not rows,
        ("Sats as the bolt11 invoices state them: claimed, not proven paid.",),
    )


def long_form(data: DashboardData) -> Panel:
    rows = data.tables["long_form_daily"]
    chart: Chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(color=ACCENT, width=alt.RelativeBandSize(0.8))
        .encode(
            x=day_axis("published_date", data),
            y=alt.Y("articles:Q", title="articles", axis=COUNT_AXIS),
            tooltip=["published_date:T", "articles:Q", "authors:Q"],
        )
        .properties(width=WIDTH, height=HEIGHT)
        if rows
        else empty_chart(nothing_to_show(data, "fct_long_form_daily", "articles"))
    )
    return Panel(
        "long_form",
        "Long-form articles per day",
        "How many long-form articles (kind 30023) are published each day?",
        chart,
        not rows,
        ("Current versions, deleted ones left out, by the day they say they were published.",),
    )
