"""Freshness that follows the data: the newest hour in a table, not the last run, decides.

Protects: a mart rebuilt a minute ago whose newest hour is days old fails its
`newest_data_is_recent` check; one whose newest hour just closed passes; an empty or missing
table fails. Real DuckDB files.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from nostr_assets.defs.data_freshness import CLOCKS, data_age, data_freshness_checks
from nostr_assets.defs.resources import WarehouseResource

EVENTS_HOURLY = dg.AssetKey(["marts", "fct_events_hourly"])


def test_age_counts_from_the_end_of_the_newest_period():
    now = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert data_age(datetime(2026, 12, 1, 13, tzinfo=UTC), timedelta(hours=1), now) == timedelta(
        minutes=30
    )
    assert data_age(date(2026, 11, 30), timedelta(days=1), now) == timedelta(hours=14, minutes=30)
    assert data_age(None, timedelta(hours=1), now) is None


def run_check(database, asset_key: dg.AssetKey) -> dg.AssetCheckEvaluation:
    check = next(
        c for c in data_freshness_checks if any(k.asset_key == asset_key for k in c.check_keys)
    )
    result = dg.materialize(
        [check],
        resources={"duckdb": WarehouseResource(database=str(database))},
        selection=dg.AssetSelection.checks(*check.check_keys),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.mark.parametrize(("hours_ago", "passed"), [(1, True), (50, False)])
def test_newest_hour_decides(tmp_path, hours_ago, passed):
    database = tmp_path / "nostr.duckdb"
    newest = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=hours_ago
    )
    with duckdb.connect(str(database)) as conn:
        conn.execute("create table fct_events_hourly (event_hour timestamptz, events bigint)")
        conn.execute("insert into fct_events_hourly values (?, 1)", [newest])
    evaluation = run_check(database, EVENTS_HOURLY)
    assert evaluation.passed is passed
    assert evaluation.metadata["age_hours"].value == pytest.approx(hours_ago - 1, abs=1)


def test_missing_table_fails(tmp_path):
    evaluation = run_check(tmp_path / "nostr.duckdb", EVENTS_HOURLY)
    assert not evaluation.passed
    assert evaluation.metadata["newest"].value == "no data"


def test_every_clock_names_a_real_asset():
    from nostr_assets.definitions import defs as load_definitions

    defs = load_definitions()

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert {clock.asset for clock in CLOCKS} <= keys
