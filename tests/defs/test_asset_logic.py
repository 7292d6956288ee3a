"""The raw assets' own logic, in milliseconds: each asset is invoked with
``build_asset_context`` on a real DuckDB file, with a fake crawler in place of the relays
(tests/fake_crawler.py). Protects what an asset lands from a crawl (union of relays, who held
what, per-relay stats, invalid copies counted and dropped), that a re-run lands the same rows,
what it tells the UI, how an hour no relay answered fails, what a probe row holds, and the
warehouse's start-up schema check as an asset meets it.

The same assets against real relays: tests/defs/test_raw_assets.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest
from fake_crawler import serving

from nostr_assets.defs.events.assets import nostr_events
from nostr_assets.defs.relays.snapshots import relay_snapshots
from nostr_assets.defs.resources import RelaySourcesResource, WarehouseResource, WarehouseUnusable
from nostr_assets.lib.protocol.event import Event, sign_event

HOUR = datetime(2024, 1, 1, 5, tzinfo=UTC)
KEY = HOUR.strftime("%Y-%m-%d-%H:%M")
A, B, DOWN = "wss://a.example", "wss://b.example", "wss://down.example"


def note(second: int, text: str, key: int = 1) -> Event:
    return sign_event(bytes([key]) * 32, int(HOUR.timestamp()) + second, 1, [], text)


E1, E2, E3 = note(0, "first"), note(1800, "second"), note(3599, "last second", key=2)
NEXT_HOUR = note(3600, "next hour")
# E3 as a relay might mangle it: same id, other content, so the id no longer matches.
FORGED = Event(E3.id, E3.pubkey, E3.created_at, E3.kind, E3.tags, "tampered", E3.sig)


def catalog(database, urls):
    with WarehouseResource(database=str(database)).get_connection() as conn:
        for url in urls:
            conn.execute(
                "insert into raw.relay_catalog values ($1, 'env', now(), now(), false, null)",
                [url],
            )


def invoke(asset, database, crawler, urls, key=KEY):
    resources = {
        "duckdb": WarehouseResource(database=str(database)),
        "crawler": crawler,
        "relay_sources": RelaySourcesResource(extra_relays=",".join(urls)),
    }
    with dg.build_asset_context(partition_key=key, resources=resources) as context:
        result = asset(context)
        return list(result) if not isinstance(result, dg.MaterializeResult) else [result]


def rows(database, sql):
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "nostr.duckdb"
    catalog(path, [A, B, DOWN])
    return path


def test_events_land_the_union_of_relays_with_who_held_what(database):
    crawler = serving({A: [E1, E2, NEXT_HOUR], B: [E2, FORGED], DOWN: "connection_refused"})
    results = invoke(nostr_events, database, crawler, [A, B, DOWN])

    events = rows(database, "select event_id, relay_count from raw.nostr_events order by 1")
    assert events == sorted([(E1.id, 1), (E2.id, 2)])  # E3 only came forged; next hour not here
    sightings = rows(database, "select event_id, relay_url from raw.event_relay_sightings")
    assert sorted(sightings) == sorted([(E1.id, A), (E2.id, A), (E2.id, B)])
    stats = rows(
        database,
        "select relay_url, events, invalid_other, error_class from raw.relay_fetch_stats "
        "order by relay_url",
    )
    assert stats == [(A, 2, 0, None), (B, 1, 1, None), (DOWN, 0, 0, "connection_refused")]

    counts = {
        r.asset_key.to_user_string(): r.metadata["dagster/row_count"]
        for r in results
        if isinstance(r, dg.MaterializeResult)
    }
    assert counts == {
        "raw/nostr_events": 2,
        "raw/event_relay_sightings": 3,
        "raw/relay_fetch_stats": 3,
    }
    checks = {r.check_name: r.passed for r in results if isinstance(r, dg.AssetCheckResult)}
    assert checks == {"relays_reached": True, "valid_event_share": True}
    materialized = next(r for r in results if isinstance(r, dg.MaterializeResult))
    assert materialized.metadata["invalid/id_mismatch"] == 1
    assert materialized.metadata["relays_failed"] == 1


def test_a_rerun_lands_the_same_rows_and_a_relay_down_erases_nothing(database):
    invoke(nostr_events, database, serving({A: [E1, E2], B: [E2, E3]}), [A, B, DOWN])
    sql = "select * from raw.nostr_events order by event_id"
    first = rows(database, sql)
    invoke(nostr_events, database, serving({A: [E1, E2], B: [E2, E3]}), [A, B, DOWN])
    assert rows(database, sql) == first
    # B is down now: what it served before stays, with its sightings.
    invoke(nostr_events, database, serving({A: [E1, E2], B: "timeout_idle"}), [A, B, DOWN])
    assert rows(database, sql) == first
    assert len(rows(database, "select * from raw.event_relay_sightings")) == 4


def test_an_hour_no_relay_answered_fails_with_its_cause_and_keeps_the_outage(database):
    crawler = serving({A: "dns_failed", B: "connection_refused", DOWN: "connection_refused"})
    with pytest.raises(dg.Failure, match="Likely cause: no network") as failed:
        invoke(nostr_events, database, crawler, [A, B, DOWN])
    assert failed.value.metadata["hours_without_any_relay"].value == 1
    stats = rows(database, "select error_class from raw.relay_fetch_stats order by relay_url")
    assert stats == [("dns_failed",), ("connection_refused",), ("connection_refused",)]
    assert rows(database, "select count(*) from raw.nostr_events") == [(0,)]


def test_retired_relays_are_not_contacted(database):
    # B left NOSTR_RELAYS: its catalog row stays, it is not fetched any more.
    invoke(nostr_events, database, serving({A: [E1], B: [E2]}), [A])
    stats = rows(database, "select relay_url from raw.relay_fetch_stats")
    assert stats == [(A,)]


def test_the_latest_hour_is_probed_one_row_per_relay(database):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    crawler = serving({A: [], B: "tls_failed", DOWN: "connection_refused"})
    [result] = invoke(
        relay_snapshots, database, crawler, [A, B, DOWN], hour.strftime("%Y-%m-%d-%H:%M")
    )
    probed = rows(
        database,
        "select relay_url, is_reachable, error_class, connected_ip, rtt_open_ms, "
        "observation_source from raw.relay_snapshots order by relay_url",
    )
    assert probed == [
        (A, True, None, "127.0.0.1", 1.5, "probe"),
        (B, False, "tls_failed", None, None, "probe"),
        (DOWN, False, "connection_refused", None, None, "probe"),
    ]
    assert result.metadata["relays_reached"] == 1
    assert result.metadata["errors/connection_refused"] == 1


def test_the_warehouse_upgrades_an_old_table_before_any_asset_writes(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema raw")
        # raw.relay_catalog without the guard's columns, as the first release made it.
        conn.execute(
            "create table raw.relay_catalog (relay_url varchar primary key, "
            "source varchar not null, first_seen_at timestamptz not null, "
            "last_seen_at timestamptz not null)"
        )
        conn.execute("insert into raw.relay_catalog values ($1, 'env', now(), now())", [A])
    with (
        pytest.raises(WarehouseUnusable, match="is_guarded: new, NOT NULL"),
        WarehouseResource(database=str(path)).get_connection(),
    ):
        pass
    # Nothing was changed by the refusal; a warehouse with a nullable gap is upgraded instead.
    with duckdb.connect(str(path)) as conn:
        conn.execute("alter table raw.relay_catalog add column is_guarded boolean default false")
        conn.execute("alter table raw.relay_catalog alter column is_guarded set not null")
    invoke(nostr_events, path, serving({A: [E1]}), [A])
    assert rows(path, "select relay_url, guard_reason from raw.relay_catalog") == [(A, None)]
    assert rows(path, "select event_id from raw.nostr_events") == [(E1.id,)]
