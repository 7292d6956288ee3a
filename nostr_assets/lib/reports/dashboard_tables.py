"""The rows of each dashboard chart, read from the marts over the hours and days shown.

Rows are dicts of JSON values (times as ISO 8601 UTC strings, sats as floats) because they go
into the page as they are, where a test compares them with SQL on the marts. Long tables are cut
to what a chart can show (the relays holding the most events first).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from nostr_assets.lib.reports.mart_reader import MartReader, Row

HOURS_SHOWN = 168  # a week of hours: enough to see the daily rhythm, few enough bars to read
DAYS_SHOWN = 90
# 2,500 relays do not fit a heatmap or a bar chart; the ones holding the most events do.
RELAYS_SHOWN = 40
TOP_SHOWN = 20
SOFTWARE_SHOWN = 15
LABEL_CHARS = 40  # NIP-11 software strings are whatever a relay operator typed
KIND_LABELS = {
    1: "notes (1)",
    7: "reactions (7)",
    6: "reposts (6)",
    9735: "zap receipts (9735)",
    30023: "articles (30023)",
}
OTHER_KINDS = "other kinds"
ACTIVE_MEASURES = {
    "daily_active_authors": "active that day",
    "weekly_active_authors": "active in 7 days",
    "monthly_active_authors": "active in 30 days",
    "new_authors": "new that day",
}


def software_label(software: str) -> str:
    """A short name for a NIP-11 software string, usually a repository URL:
    ``git+https://github.com/hoytech/strfry.git`` -> ``hoytech/strfry``."""
    text = software.strip()
    for prefix in ("git+", "https://", "http://"):
        text = text.removeprefix(prefix)
    parts = text.removesuffix(".git").rstrip("/").split("/")
    label = "/".join(parts[-2:]) if len(parts) > 2 else "/".join(parts)
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def events_by_kind(reader: MartReader, start: datetime, end: datetime) -> list[Row]:
    """Events per hour, kinds outside KIND_LABELS summed as OTHER_KINDS."""
    rows = reader.rows(
        ["fct_events_hourly"],
        "select event_hour, kind, events from fct_events_hourly "
        "where event_hour between ? and ? order by event_hour, kind",
        [start, end],
    )
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        totals[(row["event_hour"], KIND_LABELS.get(row["kind"], OTHER_KINDS))] += row["events"]
    return [
        {"event_hour": hour, "kind_group": group, "events": events}
        for (hour, group), events in sorted(totals.items())
    ]


def active_authors(reader: MartReader, first_day: date, last_day: date) -> list[Row]:
    """One row per day and measure (ACTIVE_MEASURES), for one line each."""
    rows = reader.rows(
        ["fct_active_pubkeys_daily"],
        "select * from fct_active_pubkeys_daily where activity_date between ? and ? order by 1",
        [first_day, last_day],
    )
    return [
        {"activity_date": row["activity_date"], "measure": label, "authors": row[column]}
        for row in rows
        for column, label in ACTIVE_MEASURES.items()
    ]


def uptime_relays(reader: MartReader, start: datetime, end: datetime) -> list[Row]:
    """The relays of the uptime heatmap, in order: most events held first, then best uptime;
    each with its 24 h and 7 d uptime at its latest snapshot in the window."""
    with_coverage = reader.has("fct_relay_coverage")
    held = "coverage.events_held" if with_coverage else "null::bigint"
    join = "left join fct_relay_coverage as coverage using (relay_url)" if with_coverage else ""
    return reader.rows(
        ["fct_relay_health_hourly"],
        f"""
        with latest as (
            select relay_url, snapshot_hour, uptime_24h, uptime_7d
            from fct_relay_health_hourly
            where snapshot_hour between $1 and $2
            qualify row_number() over (partition by relay_url order by snapshot_hour desc) = 1
        )
        select
            latest.relay_url, latest.snapshot_hour as latest_snapshot_hour,
            latest.uptime_24h, latest.uptime_7d, {held} as events_held
        from latest {join}
        order by events_held desc nulls last, latest.uptime_7d desc, latest.relay_url
        limit $3
        """,
        [start, end, RELAYS_SHOWN],
    )


def uptime_hours(reader: MartReader, start: datetime, end: datetime, urls: list[str]) -> list[Row]:
    return reader.rows(
        ["fct_relay_health_hourly"],
        "select snapshot_hour, relay_url, is_reachable from fct_relay_health_hourly "
        "where snapshot_hour between $1 and $2 and list_contains($3, relay_url) "
        "order by relay_url, snapshot_hour",
        [start, end, urls],
    )


def software(reader: MartReader) -> list[Row]:
    rows = reader.rows(
        ["fct_software_adoption"],
        "select software, sum(relays)::bigint as relays, count(*) as versions "
        "from fct_software_adoption group by software order by relays desc, software limit $1",
        [SOFTWARE_SHOWN],
    )
    return [{**row, "label": software_label(row["software"])} for row in rows]


def read_tables(reader: MartReader, start: datetime, end: datetime) -> dict[str, list[Row]]:
    """Each chart's rows; ``start``..``end`` are the hours shown (both included)."""
    first_day, last_day = end.date() - timedelta(days=DAYS_SHOWN - 1), end.date()
    relays = uptime_relays(reader, start, end)
    return {
        "relays_by_country": reader.rows(
            ["fct_relays_by_country"],
            "select * from fct_relays_by_country order by reachable_relays desc, country_code",
        ),
        "events_by_kind": events_by_kind(reader, start, end),
        "active_authors": active_authors(reader, first_day, last_day),
        "uptime_relays": relays,
        "uptime_hours": uptime_hours(reader, start, end, [r["relay_url"] for r in relays]),
        "relay_coverage": reader.rows(
            ["fct_relay_coverage"],
            "select * from fct_relay_coverage order by events_held desc, relay_url limit $1",
            [TOP_SHOWN],
        ),
        "replication": reader.rows(
            ["fct_event_replication"], "select * from fct_event_replication order by relay_count"
        ),
        "nip_support": reader.rows(
            ["fct_nip_support"], "select * from fct_nip_support order by nip"
        ),
        "software": software(reader),
        "zaps_daily": reader.rows(
            ["fct_zaps_daily"],
            "select zap_date, zaps, zaps_with_amount, claimed_amount_sats from fct_zaps_daily "
            "where zap_date between ? and ? order by zap_date",
            [first_day, last_day],
        ),
        "long_form_daily": reader.rows(
            ["fct_long_form_daily"],
            "select * from fct_long_form_daily where published_date between ? and ? order by 1",
            [first_day, last_day],
        ),
    }
