"""What the network dashboard shows, read from the dbt marts: the hours it covers, the key
figures and each chart's rows (dashboard_tables).

Only marts are read (mart_reader.MARTS), so the lineage graph tells the truth about what the
page depends on.

Which hours: the crawler's clock, not the authors'. The latest hour is the latest relay snapshot,
taken by the crawler for the hour just closed; created_at is chosen by each author, and some
clocks are years off. Without snapshots it is the latest event hour not after the build. Hourly
charts show the 168 hours that end with it, daily charts the 90 days that end on its day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from nostr_assets.lib.reports.dashboard_tables import HOURS_SHOWN, read_tables
from nostr_assets.lib.reports.mart_reader import MartReader, Row

# The key figures, in the order the page shows them.
FIGURES = (
    ("relays_reachable", "relays reachable"),
    ("countries", "countries with reachable relays"),
    ("events_24h", "events in the last 24 h"),
    ("active_authors", "active authors"),
    ("new_authors", "new authors"),
    ("zaps", "zap receipts"),
    ("articles", "long-form articles"),
)


@dataclass(frozen=True)
class KeyFigure:
    """One number of the row at the top of the page; ``value`` None means no data."""

    key: str
    label: str
    value: int | None
    detail: str = ""

    @property
    def text(self) -> str:
        return "no data" if self.value is None else f"{self.value:,}"


@dataclass(frozen=True)
class DashboardData:
    built_at: datetime
    latest_hour: datetime | None  # None: no hour has landed yet
    first_hour: datetime | None  # the first hour the hourly charts show
    figures: tuple[KeyFigure, ...]
    tables: dict[str, list[Row]]
    missing_marts: tuple[str, ...] = ()
    events_after_latest_hour: int = 0  # dated later than the crawler's latest hour
    relays_not_located: int = 0

    @property
    def hours_covered(self) -> int:
        if self.latest_hour is None or self.first_hour is None:
            return 0
        return int((self.latest_hour - self.first_hour) / timedelta(hours=1)) + 1

    def covered_text(self) -> str:
        """The hours the hourly charts show, as a sentence fragment."""
        if self.latest_hour is None or self.first_hour is None:
            return "no hour has landed yet"
        end = self.latest_hour + timedelta(hours=1)
        return f"{_hour_text(self.first_hour)} to {_hour_text(end)} UTC ({self.hours_covered} h)"


def _hour_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def latest_hour(reader: MartReader, built_at: datetime) -> datetime | None:
    """The crawler's latest hour: its latest relay snapshot, else its latest event hour (both
    no later than the build)."""
    snapshot = reader.value(
        ["fct_relay_health_hourly"],
        "select max(snapshot_hour) from fct_relay_health_hourly where snapshot_hour <= ?",
        [built_at],
    )
    if snapshot is not None:
        return snapshot
    return reader.value(
        ["fct_events_hourly"],
        "select max(event_hour) from fct_events_hourly where event_hour <= ?",
        [built_at],
    )


def first_hour(reader: MartReader, latest: datetime) -> datetime:
    """The first hour the hourly charts show: a week back, or the first hour with data."""
    earliest = [
        reader.value(
            ["fct_relay_health_hourly"], "select min(snapshot_hour) from fct_relay_health_hourly"
        ),
        reader.value(["fct_events_hourly"], "select min(event_hour) from fct_events_hourly"),
    ]
    week_back = latest - timedelta(hours=HOURS_SHOWN - 1)
    return max([week_back, min([e for e in earliest if e is not None], default=week_back)])


def key_figures(reader: MartReader, latest: datetime | None) -> tuple[KeyFigure, ...]:
    """The row of numbers at the top: the latest hour's relays, its 24 hours, its day."""
    if latest is None:
        return tuple(KeyFigure(k, label, None, "no hour has landed yet") for k, label in FIGURES)
    day, hour_end = latest.date(), _hour_text(latest + timedelta(hours=1))
    on_day = f"on {day.isoformat()} (UTC)"
    health = reader.rows(
        ["fct_relay_health_hourly"],
        "select count(*) filter (where is_reachable) as reachable, count(*) as probed "
        "from fct_relay_health_hourly where snapshot_hour = ?",
        [latest],
    )
    relays = health[0] if health and health[0]["probed"] else {}
    authors = reader.rows(
        ["fct_active_pubkeys_daily"],
        "select * from fct_active_pubkeys_daily where activity_date = ?",
        [day],
    )
    a = authors[0] if authors else {}
    zaps = reader.rows(["fct_zaps_daily"], "select * from fct_zaps_daily where zap_date = ?", [day])
    z = zaps[0] if zaps else {}
    values: dict[str, tuple[int | None, str]] = {
        "relays_reachable": (
            relays.get("reachable"),
            f"of {relays['probed']:,} probed in the hour of {_hour_text(latest)} UTC"
            if relays
            else f"no relay snapshot at {_hour_text(latest)} UTC",
        ),
        "countries": (
            reader.value(
                ["fct_relays_by_country"],
                "select count(*) from fct_relays_by_country where country_code <> 'ZZ'",
            ),
            "where the reachable relays' addresses are located",
        ),
        "events_24h": (
            reader.value(
                ["fct_events_hourly"],
                "select coalesce(sum(events), 0)::bigint from fct_events_hourly "
                "where event_hour > ? and event_hour <= ?",
                [latest - timedelta(hours=24), latest],
            ),
            f"created {_hour_text(latest - timedelta(hours=23))} to {hour_end} UTC",
        ),
        "active_authors": (
            a.get("daily_active_authors"),
            f"{on_day}; {a['weekly_active_authors']:,} in 7 days, "
            f"{a['monthly_active_authors']:,} in 30 days"
            if a
            else on_day,
        ),
        "new_authors": (a.get("new_authors"), f"first event {on_day}"),
        "zaps": (
            z.get("zaps"),
            f"{on_day}; their invoices claim {round(z['claimed_amount_sats'] or 0):,} sats"
            if z
            else on_day,
        ),
        "articles": (
            reader.value(
                ["fct_long_form_daily"],
                "select articles from fct_long_form_daily where published_date = ?",
                [day],
            ),
            f"published {on_day}",
        ),
    }
    return tuple(KeyFigure(k, label, *values[k]) for k, label in FIGURES)


def read_dashboard_data(
    conn: duckdb.DuckDBPyConnection | None, built_at: datetime
) -> DashboardData:
    """Everything the page shows, from the marts ``conn`` holds (None: no warehouse yet)."""
    reader = MartReader(conn)
    latest = latest_hour(reader, built_at)
    if latest is None:
        return DashboardData(
            built_at=built_at,
            latest_hour=None,
            first_hour=None,
            figures=key_figures(reader, None),
            # The same tables, without rows: every chart shows its empty state.
            tables=read_tables(MartReader(None), built_at, built_at),
            missing_marts=reader.missing,
        )
    start = first_hour(reader, latest)
    later = reader.value(
        ["fct_events_hourly"],
        "select coalesce(sum(events), 0)::bigint from fct_events_hourly where event_hour > ?",
        [latest],
    )
    tables = read_tables(reader, start, latest)
    return DashboardData(
        built_at=built_at,
        latest_hour=latest,
        first_hour=start,
        figures=key_figures(reader, latest),
        tables=tables,
        missing_marts=reader.missing,
        events_after_latest_hour=later or 0,
        relays_not_located=sum(
            r["reachable_relays"] for r in tables["relays_by_country"] if r["latitude"] is None
        ),
    )
