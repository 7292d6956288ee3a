"""Protects the dbt project: every mart's numbers on a hand-made raw dataset, the hourly window
contract with Dagster (vars window_start/window_end replace exactly that window, idempotently,
and nothing outside it), and --full-refresh. `dbt build` also runs the project's data tests
and YAML unit tests (bolt11, replaceable selection, deletions), so a failing one fails here.

The expected numbers are worked out by hand from tests/raw_fixture.py (events #1-#27).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dbt_marts import build_fixture_marts, dbt_build
from raw_fixture import ALICE, BOB, CAROL, R1, R2, T0, eid

WINDOW = {"window_start": "2024-01-01 11:00:00", "window_end": "2024-01-01 12:00:00"}


def hour(day: int, h: int) -> datetime:
    return datetime(2024, 1, day, h, tzinfo=UTC)


def query(db_path: Path, sql: str) -> list[tuple]:
    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        conn.execute("set TimeZone = 'UTC'")
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The fixture's raw tables built through every model once (no vars: all history)."""
    root = tmp_path_factory.mktemp("dbt")
    return build_fixture_marts(root), root


def test_events_hourly(built):
    db, _ = built
    rows = query(
        db, "select event_hour, kind, events, distinct_authors from fct_events_hourly order by 1, 2"
    )
    assert rows == [
        (datetime(2023, 12, 31, 10, tzinfo=UTC), 1059, 1, 1),  # #24, wrap dated a day back
        # hour 10: kind 0 #3; kind 1 #1 #2 (alice, bob); kind 3 #4 #5 (bob);
        # kind 5 #9 #10 #11 (carol, alice, bob); kind 7 #15 #16 #17 (dave, carol);
        # 1059 #13; 9735 #12; 22242 #14; 30023 #6 #7 #8 (alice, bob, carol)
        (hour(1, 10), 0, 1, 1),
        (hour(1, 10), 1, 2, 2),
        (hour(1, 10), 3, 2, 1),
        (hour(1, 10), 5, 3, 3),
        (hour(1, 10), 7, 3, 2),
        (hour(1, 10), 1059, 1, 1),
        (hour(1, 10), 9735, 1, 1),
        (hour(1, 10), 22242, 1, 1),
        (hour(1, 10), 30023, 3, 3),
        # hour 11: #19 kind 0, #18 kind 1, #20 kind 7, #21 9735
        (hour(1, 11), 0, 1, 1),
        (hour(1, 11), 1, 1, 1),
        (hour(1, 11), 7, 1, 1),
        (hour(1, 11), 9735, 1, 1),
        # hour 12: #23 9735, #22 30023
        (hour(1, 12), 9735, 1, 1),
        (hour(1, 12), 30023, 1, 1),
        (hour(2, 9), 1, 2, 2),  # #25 bob, #26 eve
        (hour(11, 10), 1, 1, 1),  # #27, forged clock: still an event of that hour
    ]
    assert query(db, "select sum(events) from fct_events_hourly") == [(27,)]


def test_active_pubkeys_daily(built):
    db, _ = built
    # Jan 1: alice, bob, carol, dave (gift-wrap keys, eve's 22242 auth and the zapper's 9735
    # receipts excluded) = 4, all new. Jan 2: bob, eve = 2; trailing 7/30 days: those 4 + eve
    # = 5; eve is new.
    # #24 (wrap, Dec 31) is excluded so the spine starts Jan 1; #27 (dated Jan 11, seen Jan 1)
    # is excluded so it does not stretch the spine.
    assert query(db, "select * from fct_active_pubkeys_daily order by 1") == [
        (datetime(2024, 1, 1).date(), 4, 4, 4, 4),
        (datetime(2024, 1, 2).date(), 2, 5, 5, 1),
    ]


def test_deletions_and_replaceable(built):
    db, _ = built
    # #10 (alice) deletes her #1; #9 (carol) deletes her article #8 by coordinate;
    # #11 (bob) targets carol's #18: ignored.
    assert query(
        db, "select event_id, deletion_event_id, deleted_via from int_event_deletions order by 1"
    ) == [(eid(1), eid(10), "e"), (eid(8), eid(9), "a")]
    assert query(db, "select count(*) filter (where is_deleted) from int_events_deduplicated") == [
        (2,)
    ]
    # alice 0 -> #19 (newer than #3); bob 3 -> #4 (tie with #5, lower id); alice intro -> #22;
    # bob-post -> #7; carol gone -> #8 (current but flagged deleted)
    assert query(
        db,
        "select event_id, kind, d_tag, is_deleted from int_events_current_replaceable order by 1",
    ) == [
        (eid(4), 3, "", False),
        (eid(7), 30023, "bob-post", False),
        (eid(8), 30023, "gone", True),
        (eid(19), 0, "", False),
        (eid(22), 30023, "intro", False),
    ]


def test_event_marts(built):
    db, _ = built
    # relay.one holds #1-#20, relay.two #11-#27: #11-#20 on both (10), 17 on one relay
    assert query(db, "select * from fct_event_replication order by 1") == [(1, 17), (2, 10)]
    assert query(
        db,
        "select relay_url, events_held, round(share_of_events, 6), exclusive_events "
        "from fct_relay_coverage order by 1",
    ) == [
        (R1, 20, round(20 / 27, 6), 10),  # exclusive #1-#10
        (R2, 17, round(17 / 27, 6), 7),  # exclusive #21-#27
    ]
    # zaps: #12 2500u = 250000 sats (dave -> bob), #21 10n = 1 sat (carol -> bob),
    # #23 lnbc1... no amount (dave -> alice): 3 zaps, 2 with amount, 250001 sats, 2 senders
    # (dave, carol), 2 recipients (bob, alice)
    assert query(db, "select * from fct_zaps_daily") == [
        (datetime(2024, 1, 1).date(), 3, 2, Decimal("250001.0000"), 2, 2)
    ]
    # current 30023 not deleted: #22 (published_at = T0 + 300, Jan 1) and #7 (Jan 1); #8 deleted
    assert query(db, "select * from fct_long_form_daily") == [(datetime(2024, 1, 1).date(), 2, 2)]
    # #15 (last e = #2) and #16 react to #2; #20 to #18; #17 targets the deleted #1
    assert query(
        db,
        "select reaction_rank, event_id, author_pubkey, reactions, distinct_reactors "
        "from fct_top_reactions order by 1",
    ) == [(1, eid(2), BOB, 2, 2), (2, eid(18), CAROL, 1, 1)]
    assert T0 == 1704103200 and ALICE == "a" * 64


def test_relay_marts(built):
    db, _ = built
    # latest snapshot 12:00: relay.one reachable, strfry 1.0.1, DE; relay.two down, its latest
    # NIP-11 (11:00) says nostr-rs-relay 0.9.0, paid + auth, US; relay.three reachable, no
    # NIP-11, not located
    assert query(
        db,
        "select relay_url, is_reachable, has_nip11, software_version, "
        "supported_nips, is_payment_required, country_code, city, asn "
        "from dim_relays order by 1",
    ) == [
        (R1, True, True, "1.0.1", [1, 2, 9, 11], False, "DE", "Frankfurt", 24940),
        ("wss://relay.three", True, False, None, None, None, None, None, None),
        (R2, False, True, "0.9.0", [1, 11, 42], True, "US", "Ashburn", 16509),
    ]
    assert query(db, "select * from fct_relays_by_country order by 1") == [
        ("DE", "Germany", 1, 50.1, 8.7),
        ("ZZ", "Unknown", 1, None, None),
    ]
    # 2 relays with NIP-11: NIP 1 and 11 on both; 2 and 9 on relay.one; 42 on relay.two
    assert query(
        db, "select nip, relays_supporting, relays_with_nip11 from fct_nip_support order by 1"
    ) == [(1, 2, 2), (2, 1, 2), (9, 1, 2), (11, 2, 2), (42, 1, 2)]
    assert query(db, "select software_version, relays from fct_software_adoption order by 1") == [
        ("0.9.0", 1),
        ("1.0.1", 1),
    ]
    # relay.two: up 10:00, 11:00, down 12:00 -> uptime 2/3 over its 3 snapshots
    assert query(
        db,
        "select snapshot_hour, is_reachable, uptime_24h, snapshots_24h "
        f"from fct_relay_health_hourly where relay_url = '{R2}' order by 1",
    ) == [
        (hour(1, 10), True, 1.0, 1),
        (hour(1, 11), True, 1.0, 2),
        (hour(1, 12), False, pytest.approx(2 / 3), 3),
    ]
    assert query(db, "select count(*) from fct_relay_health_hourly") == [(7,)]


def test_claims_against_observations(built):
    db, _ = built
    verdicts = query(
        db, "select relay_url, nip, verdict from fct_relay_claims_vs_observed order by 1, 2"
    )
    # relay.one (12:00): claims 1, 2, 9, 11; answered REQ and COUNT, not negentropy.
    # relay.two (11:00, its latest probe that reached it; 12:00 it was down): claims 1, 11, 42;
    # demanded AUTH to read (so COUNT and NEG-OPEN were not tried). relay.three: no NIP-11,
    # answered a REQ.
    assert verdicts == [
        (R1, 1, "claimed_and_observed"),
        (R1, 11, "claimed_and_observed"),
        (R1, 42, "not_tested"),
        (R1, 45, "observed_not_claimed"),
        (R1, 77, "neither"),
        ("wss://relay.three", 1, "observed_not_claimed"),
        ("wss://relay.three", 11, "neither"),
        ("wss://relay.three", 42, "not_tested"),
        ("wss://relay.three", 45, "neither"),
        ("wss://relay.three", 77, "neither"),
        (R2, 1, "claimed_and_observed"),
        (R2, 11, "claimed_and_observed"),
        (R2, 42, "claimed_and_observed"),
        (R2, 45, "not_tested"),
        (R2, 77, "not_tested"),
    ]
    assert query(
        db,
        f"select distinct observed_hour from fct_relay_claims_vs_observed where relay_url = '{R2}'",
    ) == [(hour(1, 11),)]


def test_relay_uptime_history(built):
    db, _ = built
    assert query(
        db,
        "select relay_url, hours_observed, hours_reachable, uptime_24h, uptime_7d, "
        "longest_outage_hours, last_reachable_hour, as_of_hour from fct_relay_uptime order by 1",
    ) == [
        (R1, 3, 3, 1.0, 1.0, 0, hour(1, 12), hour(1, 12)),
        ("wss://relay.three", 1, 1, 1.0, 1.0, 0, hour(1, 12), hour(1, 12)),
        (R2, 3, 2, pytest.approx(2 / 3), pytest.approx(2 / 3), 1, hour(1, 11), hour(1, 12)),
    ]
    first, last = query(
        db, f"select first_seen_at, last_seen_at from fct_relay_uptime where relay_url = '{R2}'"
    )[0]
    assert (first.hour, last.hour) == (10, 12)


def test_failures_speak_one_vocabulary(built, tmp_path):
    db, _ = built
    # Values landed before nostr_assets/lib/failures.py are recoded by staging.
    assert query(
        db,
        "select relay_url, error_class, nip11_error from stg_nostr__relay_snapshots "
        "where snapshot_hour = timestamptz '2024-01-01 12:00:00+00' order by 1",
    ) == [
        (R1, None, None),
        ("wss://relay.three", None, "http_status"),
        (R2, "timeout_connect", "refused_address"),
    ]
    # A value outside the vocabulary fails the generated accepted_values test.
    copy = tmp_path / "nostr.duckdb"
    shutil.copy(db, copy)
    with duckdb.connect(str(copy)) as conn:
        conn.execute(
            "update raw.relay_snapshots set error_class = 'gremlins' where relay_url = ?", [R2]
        )
    with pytest.raises(AssertionError, match="dbt build"):
        dbt_build(copy, tmp_path / "target", "--select", "stg_nostr__relay_snapshots")


HOURLY_STATE = (
    "select * from fct_events_hourly order by event_hour, kind",
    "select * from fct_relay_health_hourly order by relay_url, snapshot_hour",
)


def test_window_rebuild_is_idempotent_and_bounded(built, tmp_path):
    db = tmp_path / "nostr.duckdb"
    shutil.copy(built[0], db)
    conn = duckdb.connect(str(db))
    conn.execute("set TimeZone = 'UTC'")
    # a re-crawl of 11:00 lost #19 (alice's kind 0) and found relay.one down at 11:00;
    # meanwhile a late kind-1 note landed in 10:00, outside the window
    conn.execute(f"delete from raw.event_relay_sightings where event_id = '{eid(19)}'")
    conn.execute(f"delete from raw.nostr_events where event_id = '{eid(19)}'")
    conn.execute(
        f"update raw.relay_snapshots set is_reachable = false where relay_url = '{R1}' "
        "and snapshot_hour = timestamptz '2024-01-01 11:00:00+00'"
    )
    conn.execute(
        "insert into raw.nostr_events select '" + eid(99) + "', pubkey, created_at, "
        "created_hour, kind, tags, content, sig, raw_json, first_seen_at, relay_count "
        f"from raw.nostr_events where event_id = '{eid(2)}'"
    )
    conn.close()

    vars_arg = f"{{window_start: '{WINDOW['window_start']}', window_end: '{WINDOW['window_end']}'}}"
    dbt_build(db, tmp_path / "target", "--select", "tag:hourly", "--vars", vars_arg)
    first = [query(db, sql) for sql in HOURLY_STATE]
    dbt_build(db, tmp_path / "target", "--select", "tag:hourly", "--vars", vars_arg)
    assert [query(db, sql) for sql in HOURLY_STATE] == first

    events = {(h, k): n for h, k, n, _ in first[0]}
    assert (hour(1, 11), 0) not in events  # the vanished row was deleted with its window
    assert events[(hour(1, 11), 1)] == 1
    assert events[(hour(1, 10), 1)] == 2  # the late 10:00 note is outside the window
    health = {(r, h): (up, u24) for h, r, up, _, _, u24, *_ in first[1]}
    # relay.one 11:00 down: trailing 24 h = 10:00 up (read through the lookback), 11:00 down
    assert health[(R1, hour(1, 11))] == (False, 0.5)
    assert health[(R1, hour(1, 12))] == (True, 1.0)  # 12:00 is outside the window: untouched

    # --full-refresh without vars rebuilds all history from raw
    dbt_build(db, tmp_path / "target", "--select", "tag:hourly", "--full-refresh")
    refreshed = [query(db, sql) for sql in HOURLY_STATE]
    events = {(h, k): n for h, k, n, _ in refreshed[0]}
    assert events[(hour(1, 10), 1)] == 3
    health = {(r, h): (up, u24) for h, r, up, _, _, u24, *_ in refreshed[1]}
    assert health[(R1, hour(1, 12))] == (True, pytest.approx(2 / 3))
