"""Freshness that follows the data: how old the newest hour in each table is, checked twice an hour.

Dagster's freshness policies measure the time since an asset last materialized. That says
little here: the late-events sensor re-fetches the hour from 48 hours ago every hour, and the
marts without partitions rebuild whenever any hour lands, so a mart can look fresh while its
newest hour of data is days old (every recent fetch failed, say). These checks read the newest
hour from the table itself and fail when it is older than the asset's freshness policy allows.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.freshness import DAILY_FRESHNESS, HOURLY_FRESHNESS
from nostr_assets.defs.writers import RAW_WRITERS_POOL
from nostr_assets.lib.warehouse.raw_table import scalar


@dataclass(frozen=True)
class DataClock:
    """Where an asset's newest data is: a table, its time column, and the span one value of it
    covers (an hour of `created_hour` is complete one hour after its start)."""

    asset: dg.AssetKey
    table: str
    column: str
    span: timedelta
    allowed_age: timedelta


HOUR, DAY = timedelta(hours=1), timedelta(days=1)
HOURLY_AGE = HOURLY_FRESHNESS.fail_window.to_timedelta()
DAILY_AGE = DAILY_FRESHNESS.fail_window.to_timedelta()

CLOCKS = [
    DataClock(
        dg.AssetKey(["raw", "nostr_events"]), "raw.nostr_events", "created_hour", HOUR, HOURLY_AGE
    ),
    DataClock(
        dg.AssetKey(["raw", "relay_snapshots"]),
        "raw.relay_snapshots",
        "snapshot_hour",
        HOUR,
        HOURLY_AGE,
    ),
    DataClock(
        dg.AssetKey(["marts", "fct_events_hourly"]),
        "main.fct_events_hourly",
        "event_hour",
        HOUR,
        HOURLY_AGE,
    ),
    DataClock(
        dg.AssetKey(["marts", "fct_relay_health_hourly"]),
        "main.fct_relay_health_hourly",
        "snapshot_hour",
        HOUR,
        HOURLY_AGE,
    ),
    DataClock(
        dg.AssetKey(["marts", "fct_active_pubkeys_daily"]),
        "main.fct_active_pubkeys_daily",
        "activity_date",
        DAY,
        DAILY_AGE,
    ),
]


def data_age(newest: date | datetime | None, span: timedelta, now: datetime) -> timedelta | None:
    """How long ago the newest period of data ended; None when there is no data."""
    if newest is None:
        return None
    if not isinstance(newest, datetime):  # a DATE column: its days are UTC days
        newest = datetime(newest.year, newest.month, newest.day, tzinfo=UTC)
    return now - (newest + span)


def _build_check(clock: DataClock) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=clock.asset,
        name="newest_data_is_recent",
        description=(
            f"The newest {clock.column} in {clock.table} ended less than "
            f"{clock.allowed_age} ago (the asset's freshness policy), whenever it last ran."
        ),
        # Twice an hour, by the automation sensor, at minutes the hourly schedule leaves free.
        # (Dagster types these conditions for assets; they evaluate the same for a check.)
        automation_condition=dg.AutomationCondition.cron_tick_passed("25,55 * * * *")  # type: ignore[arg-type]
        & ~dg.AutomationCondition.in_progress(),
        pool=RAW_WRITERS_POOL,
    )
    def newest_data_is_recent(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        now = datetime.now(UTC)
        with duckdb.get_connection() as conn:
            exists = scalar(
                conn,
                "select count(*) from duckdb_tables() where schema_name || '.' || table_name = ?",
                [clock.table],
            )
            newest = (
                scalar(conn, f"select max({clock.column}) from {clock.table}") if exists else None
            )
        age = data_age(newest, clock.span, now)
        return dg.AssetCheckResult(
            passed=age is not None and age <= clock.allowed_age,
            metadata={
                "newest": str(newest) if newest is not None else "no data",
                "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else -1.0,
                "allowed_hours": clock.allowed_age.total_seconds() / 3600,
            },
        )

    return newest_data_is_recent


data_freshness_checks = [_build_check(clock) for clock in CLOCKS]
