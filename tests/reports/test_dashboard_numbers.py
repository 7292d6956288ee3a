"""Protects what the dashboard tells: its key figures and the data inline in each chart are what
SQL on the marts says, for the marts dbt builds from the hand-made raw dataset; the hours it
covers follow the crawler's clock (its latest relay snapshot), not forged created_at; and text
from strangers (NIP-11 software strings) cannot break out of the page's JSON.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from dashboard_page_reader import PageContents, read_page, rows_with

from nostr_assets.lib.reports.country_outlines import WORLD_ATLAS_FILE
from nostr_assets.lib.reports.dashboard import Dashboard, build_dashboard
from nostr_assets.lib.reports.dashboard_tables import KIND_LABELS, OTHER_KINDS

pytestmark = pytest.mark.slow  # dbt builds the marts once per session

ROOT = Path(__file__).resolve().parents[2]
BUILT_AT = datetime(2024, 1, 3, 8, 30, tzinfo=UTC)
# The crawler's latest hour in the fixture: the last relay snapshot (2024-01-01 12:00). Events
# dated later (#25, #26 on Jan 2 and the forged #27 on Jan 11) are left out of the charts.
LATEST = "(select max(snapshot_hour) from fct_relay_health_hourly)"


def query(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as conn:
        conn.execute("set TimeZone = 'UTC'")
        return conn.execute(sql).fetchall()


def build(database: Path, world_atlas: Path = ROOT / WORLD_ATLAS_FILE) -> Dashboard:
    with duckdb.connect(str(database), read_only=True) as conn:
        return build_dashboard(conn, BUILT_AT, world_atlas)


@pytest.fixture(scope="module")
def dashboard(fixture_marts) -> Dashboard:
    return build(fixture_marts)


@pytest.fixture(scope="module")
def page(dashboard) -> PageContents:
    return read_page(dashboard.html)


def as_tuples(rows: list[dict], columns: list[str]) -> list[tuple]:
    return sorted(tuple(row[c] for c in columns) for row in rows)


def test_key_figures_are_the_marts_numbers(fixture_marts, page):
    (expected,) = query(
        fixture_marts,
        f"""
        select
            (select count(*) filter (where is_reachable) from fct_relay_health_hourly
             where snapshot_hour = {LATEST}),
            (select count(*) from fct_relays_by_country where country_code != 'ZZ'),
            (select sum(events) from fct_events_hourly
             where event_hour between {LATEST} - interval 23 hours and {LATEST}),
            (select daily_active_authors from fct_active_pubkeys_daily
             where activity_date = {LATEST}::date),
            (select new_authors from fct_active_pubkeys_daily
             where activity_date = {LATEST}::date),
            (select zaps from fct_zaps_daily where zap_date = {LATEST}::date),
            (select articles from fct_long_form_daily where published_date = {LATEST}::date)
        """,
    )
    keys = [
        "relays_reachable",
        "countries",
        "events_24h",
        "active_authors",
        "new_authors",
        "zaps",
        "articles",
    ]
    assert {k: int(page.figures[k]) for k in keys} == dict(zip(keys, expected, strict=True))
    # And by hand from the fixture: at 12:00 relay.one and relay.three answer (relay.two is
    # down), one of them located (DE); hours 10-12 of Jan 1 hold 17 + 4 + 2 events; alice,
    # bob, carol and dave are active, all new; 3 zaps; articles #7 and #22.
    assert expected == (2, 1, 23, 4, 4, 3, 2)
    assert page.figure_texts["events_24h"] == "23"


def test_the_hours_covered_follow_the_crawlers_clock(dashboard, page):
    data = dashboard.data
    assert data.latest_hour == datetime(2024, 1, 1, 12, tzinfo=UTC)
    # From the gift wrap dated a day back (#24, Dec 31 10:00) to the end of 12:00.
    assert data.first_hour == datetime(2023, 12, 31, 10, tzinfo=UTC)
    assert page.hours_covered == data.hours_covered == 27
    assert "2023-12-31 10:00 to 2024-01-01 13:00 UTC (27 h)" in "".join(page.text)
    # #25 and #26 (Jan 2 09:00) and #27 (forged clock, Jan 11) are dated after it.
    assert data.events_after_latest_hour == 3


def test_events_by_kind_are_the_marts_hours(fixture_marts, page):
    labels = " ".join(f"when {kind} then '{label}'" for kind, label in KIND_LABELS.items())
    expected = query(
        fixture_marts,
        f"""
        select strftime(event_hour, '%Y-%m-%dT%H:%M:%SZ'),
               case kind {labels} else '{OTHER_KINDS}' end, sum(events)
        from fct_events_hourly
        where event_hour between {LATEST} - interval 167 hours and {LATEST}
        group by all order by all
        """,
    )
    shown = rows_with(page.specs["events_by_kind"], "kind_group")
    assert as_tuples(shown, ["event_hour", "kind_group", "events"]) == expected
    assert sum(r["events"] for r in shown) == 24  # 23 on Jan 1 and the wrap on Dec 31


def test_relay_charts_are_the_marts_rows(fixture_marts, page):
    located = rows_with(page.specs["relay_map"], "reachable_relays")
    assert as_tuples(located, ["country_code", "reachable_relays", "latitude", "longitude"]) == (
        query(
            fixture_marts,
            "select country_code, reachable_relays, latitude, longitude "
            "from fct_relays_by_country where latitude is not null order by all",
        )
    )
    hours = rows_with(page.specs["relay_uptime"], "is_reachable")
    assert as_tuples(hours, ["relay_url", "snapshot_hour", "is_reachable"]) == query(
        fixture_marts,
        "select relay_url, strftime(snapshot_hour, '%Y-%m-%dT%H:%M:%SZ'), is_reachable "
        "from fct_relay_health_hourly order by all",
    )
    uptime = rows_with(page.specs["relay_uptime"], "uptime_7d")
    assert as_tuples(uptime, ["relay_url", "uptime_24h", "uptime_7d"]) == query(
        fixture_marts,
        f"select relay_url, uptime_24h, uptime_7d from fct_relay_health_hourly "
        f"where snapshot_hour = {LATEST} order by all",
    )
    # Most events held first: relay.one (20), relay.two (17), relay.three (none).
    assert [r["relay_url"] for r in uptime] == [
        "wss://relay.one",
        "wss://relay.two",
        "wss://relay.three",
    ]
    coverage = rows_with(page.specs["relay_coverage"], "exclusive_events")
    assert as_tuples(
        coverage, ["relay_url", "events_held", "share_of_events", "exclusive_events"]
    ) == query(fixture_marts, "select * from fct_relay_coverage order by all")
    replication = rows_with(page.specs["replication"], "relay_count")
    assert as_tuples(replication, ["relay_count", "events"]) == [(1, 17), (2, 10)]
    nips = rows_with(page.specs["nip_support"], "nip")
    assert as_tuples(nips, ["nip", "relays_supporting", "share_of_relays"]) == query(
        fixture_marts,
        "select nip, relays_supporting, share_of_relays from fct_nip_support order by all",
    )
    software = rows_with(page.specs["software"], "software")
    assert as_tuples(software, ["software", "relays"]) == query(
        fixture_marts,
        "select software, sum(relays) from fct_software_adoption group by all order by all",
    )
    assert {r["label"] for r in software} == {"hoytech/strfry", "~gheartsfield/nostr-rs-relay"}


def test_daily_charts_are_the_marts_days(fixture_marts, page):
    authors = rows_with(page.specs["active_authors"], "measure")
    (daily, weekly, monthly, new) = query(
        fixture_marts,
        "select daily_active_authors, weekly_active_authors, monthly_active_authors, "
        f"new_authors from fct_active_pubkeys_daily where activity_date <= {LATEST}::date",
    )[0]
    assert as_tuples(authors, ["activity_date", "measure", "authors"]) == sorted(
        [
            ("2024-01-01", "active that day", daily),
            ("2024-01-01", "active in 7 days", weekly),
            ("2024-01-01", "active in 30 days", monthly),
            ("2024-01-01", "new that day", new),
        ]
    )
    zaps = rows_with(page.specs["zaps"], "claimed_amount_sats")
    assert as_tuples(zaps, ["zap_date", "zaps", "claimed_amount_sats"]) == [
        ("2024-01-01", 3, 250001.0)
    ]
    articles = rows_with(page.specs["long_form"], "articles")
    assert as_tuples(articles, ["published_date", "articles"]) == query(
        fixture_marts,
        "select strftime(published_date, '%Y-%m-%d'), articles from fct_long_form_daily",
    )


def test_no_chart_is_empty_and_the_map_embeds_country_outlines(dashboard, page):
    assert {key: chart["data-empty"] for key, chart in page.charts.items()} == {
        panel.key: "false" for panel in dashboard.panels
    }
    assert len(page.specs) == len(page.charts) == 10
    if dashboard.outlines.topology is None:
        pytest.skip(f"world-atlas is not installed (npm ci): {dashboard.outlines.why_missing}")
    layers = page.specs["relay_map"]["layer"]
    topojson = [layer["data"] for layer in layers if "format" in layer.get("data", {})]
    assert topojson[0]["format"] == {"type": "topojson", "feature": "countries"}
    assert len(topojson[0]["values"]["objects"]["countries"]["geometries"]) > 150
    assert "Natural Earth, via world-atlas (ISC)" in "".join(page.text)


def test_without_world_atlas_the_map_is_a_globe_and_says_so(fixture_marts, tmp_path):
    page = read_page(build(fixture_marts, tmp_path / "absent.json").html)
    layers = page.specs["relay_map"]["layer"]
    assert {"sphere": True} in [layer["data"] for layer in layers]
    assert {"graticule": True} in [layer["data"] for layer in layers]
    text = "".join(page.text)
    assert "No country outlines" in text and "absent.json is absent (run `npm ci`" in text
    assert rows_with(page.specs["relay_map"], "reachable_relays")  # the bubbles are still there


def test_strangers_text_cannot_leave_the_json(fixture_marts, tmp_path):
    database = tmp_path / "nostr.duckdb"
    shutil.copy(fixture_marts, database)
    hostile = "</script><script>alert(1)</script><!-- & 'x'"
    with duckdb.connect(str(database)) as conn:
        conn.execute("update fct_software_adoption set software = ?", [hostile])
    html = build(database).html
    assert "<script>alert(1)" not in html
    # The browser's view of the data is still the relay's exact text.
    software = rows_with(read_page(html).specs["software"], "software")
    assert [r["software"] for r in software] == [hostile]
