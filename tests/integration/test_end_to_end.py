"""The whole asset graph, raw to marts, for a three-hour range against two real relays.

Protects: every mart's exact numbers on a known world (tests/integration/rich_events.py: two
overlapping relays, replaceable and addressable updates, valid and invalid NIP-09 deletions, zaps
with known amounts, gift wraps, reactions, long-form, hour-boundary events, a dead relay found in
a NIP-65 list); the sequence Dagster runs in production (catalog, a single-run 3-hour events
backfill, snapshot and geolocation of the latest closed hour, dbt's hourly models over the range,
then the rest) wired through the real definitions; dbt tests arriving as passing asset checks;
and idempotency: the same sequence run twice leaves every dbt table identical.

Every expected number below is worked out by hand from the table in rich_events.py (the comments
say how), or counted from that table's Python description in a plain loop, never by SQL.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import nostr_relay
import pytest
from dagster_env import LOOPBACK_AS, LOOPBACK_PLACE, graph_resources, write_test_geoip
from relays import RelayHandle, start_relay
from rich_events import (
    DEAD_RELAY,
    HOUR,
    PUBKEYS,
    RANGE_START,
    T,
    build_fixture,
)

from nostr_assets.definitions import defs as load_definitions

pytestmark = pytest.mark.integration

FIXTURE = build_fixture()
FIRST_HOUR = datetime.fromtimestamp(RANGE_START, UTC)
LAST_HOUR = FIRST_HOUR + timedelta(hours=2)
DAY = date(2024, 2, 1)

NOSTR_RELAY_SOFTWARE = "https://code.pobblelabs.org/fossil/nostr_relay"
# nostr-relay 1.14 lists these in NIP-11 when auth (42) and full-text search (50) are off.
NOSTR_RELAY_NIPS = [1, 2, 5, 9, 11, 12, 15, 20, 26, 33, 40]

EVENT_TABLES = dg.AssetSelection.assets(["raw", "nostr_events"]).required_multi_asset_neighbors()
HEALTH_HOURLY_KEY = dg.AssetKey(["marts", "fct_relay_health_hourly"])
# dbt's `hourly` tag: the staging views over the hourly raw tables and the two hourly marts
# (fct_events_hourly, fct_relay_health_hourly), one dbt step; every other model is the other.
HOURLY_DBT = dg.AssetSelection.tag("hourly", "")
OTHER_DBT = dg.AssetSelection.groups("staging", "intermediate", "marts") - HOURLY_DBT

# Columns that honestly observe the present, left out of the run-twice comparison:
# round-trip times are measured anew by each snapshot; the catalog's last_seen_at is "now".
PRESENT_COLUMNS = {
    "dim_relays": {"latest_rtt_open_ms", "latest_rtt_read_ms", "last_seen_at"},
    "fct_relay_health_hourly": {"rtt_open_ms", "rtt_read_ms"},
    "fct_relay_uptime": {"first_seen_at", "last_seen_at"},
}


def hour_key(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%d-%H:%M")


def range_tags(first: datetime, last: datetime) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": hour_key(first),
        "dagster/asset_partition_range_end": hour_key(last),
    }


def query(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as conn:
        conn.execute("set TimeZone = 'UTC'")
        return conn.execute(sql).fetchall()


def materialise_everything(resources: dict, snapshot_hour: datetime) -> list:
    """The order production follows, in six Dagster runs; returns every run's result.

    Three dbt steps per sequence, in two runs: the hourly models over the 3-hour range, then
    relay health's snapshot hour and every unpartitioned model (the catalog's staging view
    among them; an unpartitioned asset may ride in a partitioned run, and Dagster orders the
    steps by lineage). Each dbt step costs 8-15 s here (dbt --version once per run, dbt's
    start-up, a full parse because --vars change, the models, the row counts). The catalog's
    staging view went with the hourly range before: it belongs to the unpartitioned step, which
    then ran for that one view, a fourth step per sequence."""

    def run(selection, partition_key=None, tags=None):
        return dg.materialize(
            list(load_definitions().assets or []),
            selection=selection,
            partition_key=partition_key,
            tags=tags,
            resources=resources,
        )

    snapshot_key = hour_key(snapshot_hour)
    return [
        run("raw/relay_catalog"),
        # the three event tables for all three hours in ONE run (single-run backfill policy)
        run(EVENT_TABLES, tags=range_tags(FIRST_HOUR, LAST_HOUR)),
        # discovery: the catalog learns ws://127.0.0.1:9 from alice's kind-10002 list
        run("raw/relay_catalog"),
        # a snapshot observes the present: only the latest closed hour can be taken
        run(
            dg.AssetSelection.assets(["raw", "relay_snapshots"], ["raw", "relay_geolocations"]),
            partition_key=snapshot_key,
        ),
        # the staging views over the hourly raw tables, then the hourly marts, for the same
        # three hours
        run(HOURLY_DBT, tags=range_tags(FIRST_HOUR, LAST_HOUR)),
        # relay health is keyed on the snapshot hour, so its partition is the snapshot's; then
        # every other model (unpartitioned) in the same run
        run(dg.AssetSelection.assets(HEALTH_HOURLY_KEY) | OTHER_DBT, partition_key=snapshot_key),
    ]


def warehouse_tables(database: Path) -> dict[str, list[tuple]]:
    """Every table dbt built (schema main: intermediate and marts) and the raw event tables,
    minus the columns that observe the present."""
    names = query(
        database,
        """
        select table_schema, table_name from information_schema.tables
        where table_type = 'BASE TABLE' and (table_schema = 'main' or table_name in
            ('nostr_events', 'event_relay_sightings', 'relay_geolocations'))
        order by all""",
    )
    tables = {}
    for schema, name in names:
        columns = query(
            database,
            f"""
            select column_name from information_schema.columns
            where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position""",
        )
        kept = [c for (c,) in columns if c not in PRESENT_COLUMNS.get(name, set())]
        tables[f"{schema}.{name}"] = query(
            database, f"select {', '.join(kept)} from {schema}.{name} order by all"
        )
    return tables


@dataclass
class World:
    first_run: Path  # a copy of the warehouse after the first sequence
    second_run: Path  # the warehouse after the same sequence again
    results: list
    relay_x: str
    relay_y: str
    snapshot_hour: datetime


def start_relays_x_and_y(root: Path) -> tuple[RelayHandle, RelayHandle]:
    """Relays X and Y, started side by side: each start is a few CPU-bound seconds of
    imports, migration and loading (two interpreters), and there are two cores."""
    with ThreadPoolExecutor(2) as pool:
        starting = [
            pool.submit(start_relay, root / "relay_x", FIXTURE.relay_load_order("X")),
            # a low cap on Y: its hours (up to 12 events) come back in several pages
            pool.submit(start_relay, root / "relay_y", FIXTURE.relay_load_order("Y"), max_limit=4),
        ]
    started = [f.result() for f in starting if f.exception() is None]
    if len(started) < 2:
        for relay in started:
            relay.stop()
        raise next(f.exception() for f in starting if f.exception() is not None)
    return started[0], started[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("end_to_end")
    relay_x, relay_y = start_relays_x_and_y(root)
    try:
        city, asn = write_test_geoip(root)
        database = root / "nostr.duckdb"
        resources = graph_resources(database, [relay_x.url, relay_y.url], city, asn)
        # one hour for both sequences, so a run that straddles an hour boundary still compares
        snapshot_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
            hours=1
        )
        with pytest.MonkeyPatch.context() as mp:
            # dbt runs as a subprocess and finds the warehouse through its profile
            mp.setenv("NOSTR_DUCKDB_PATH", str(database))
            results = materialise_everything(resources, snapshot_hour)
            first_run = root / "first_run.duckdb"
            with duckdb.connect(str(database)) as conn:
                conn.execute("checkpoint")  # everything in the file, nothing left in a WAL
            shutil.copyfile(database, first_run)
            results += materialise_everything(resources, snapshot_hour)
        return World(first_run, database, results, relay_x.url, relay_y.url, snapshot_hour)
    finally:
        relay_x.stop()
        relay_y.stop()


def ids(*labels: str) -> set[str]:
    return {FIXTURE.id(label) for label in labels}


# --- raw ------------------------------------------------------------------------------------


def test_raw_events_are_the_range_exactly(world):
    stored = {i for (i,) in query(world.first_run, "select event_id from raw.nostr_events")}
    assert stored == {FIXTURE.id(label) for label in FIXTURE.in_range()}
    assert len(stored) == 32  # table rows #1-#32; #33 (03:00:00, after the range) never fetched
    assert FIXTURE.id("after_range") not in stored
    # the boundary seconds land in the right partitions
    hours = dict(query(world.first_run, "select event_id, created_hour from raw.nostr_events"))
    assert hours[FIXTURE.id("alice_profile_v1")] == FIRST_HOUR  # 00:00:00
    assert hours[FIXTURE.id("alice_note_deleted")] == FIRST_HOUR  # 00:59:59
    assert hours[FIXTURE.id("alice_profile_v2")] == FIRST_HOUR + timedelta(hours=1)  # 01:00:00
    assert hours[FIXTURE.id("gift_wrap_3")] == LAST_HOUR  # 02:59:59


def test_catalog_discovers_the_dead_relay_from_a_relay_list(world):
    rows = query(
        world.first_run,
        "select relay_url, source, is_guarded from raw.relay_catalog order by relay_url",
    )
    # X and Y come from NOSTR_RELAYS; ws://127.0.0.1:9 from alice's kind 10002 (#24); the
    # https:// URL of the same list is refused (not ws/wss). All three are loopback: guarded.
    assert rows == sorted(
        [(world.relay_x, "env", True), (world.relay_y, "env", True), (DEAD_RELAY, "nip65", True)]
    )


def test_fetch_stats_per_relay_and_hour(world):
    rows = query(
        world.second_run,
        "select relay_url, created_hour, events, error_class from raw.relay_fetch_stats",
    )
    expected = set()
    for url, held in ((world.relay_x, FIXTURE.on_x), (world.relay_y, FIXTURE.on_y)):
        per_hour = Counter(
            (FIXTURE.events[label].created_at - T) // HOUR
            for label in FIXTURE.in_range()
            if label in held
        )
        expected |= {(url, FIRST_HOUR + timedelta(hours=h), n, None) for h, n in per_hour.items()}
    # by the second sequence the catalog lists the dead relay, so its crawl is tried and refused
    expected |= {
        (DEAD_RELAY, FIRST_HOUR + timedelta(hours=h), 0, "connection_refused") for h in range(3)
    }
    assert sorted(rows) == sorted(expected)


# --- marts ----------------------------------------------------------------------------------

# (hour offset, kind) -> (events, distinct authors), from the table in rich_events.py:
EVENTS_HOURLY = {
    # hour 0: profiles #1 #2; notes #3 #4 #9 #12 by alice, bob, dave; contacts #5; reactions
    # #6 #7 by bob, carol; article #8; zap #10; gift wrap #11
    (0, 0): (2, 2),
    (0, 1): (4, 3),
    (0, 3): (1, 1),
    (0, 7): (2, 2),
    (0, 30023): (1, 1),
    (0, 9735): (1, 1),
    (0, 1059): (1, 1),
    # hour 1: profile #13; contacts #14; deletions #15 #16 by alice, bob; articles #17 #18 #22
    # by alice, bob, carol; reactions #19 #20 both by dave; zap #21; gift wrap #23; list #24
    (1, 0): (1, 1),
    (1, 3): (1, 1),
    (1, 5): (2, 2),
    (1, 30023): (3, 3),
    (1, 7): (2, 1),
    (1, 9735): (1, 1),
    (1, 1059): (1, 1),
    (1, 10002): (1, 1),
    # hour 2: notes #25 #28 by dave, carol; zaps #26 #27 (one zapper); reactions #29 #30 both by
    # bob; deletion #31; gift wrap #32 at 02:59:59. Nothing from 03:00:00 (#33).
    (2, 1): (2, 2),
    (2, 9735): (2, 1),
    (2, 7): (2, 1),
    (2, 5): (1, 1),
    (2, 1059): (1, 1),
}


def test_hand_counts_agree_with_the_fixture():
    """Guards the hand-made table above against a slip: a plain loop over the fixture."""
    counted: dict[tuple[int, int], list] = defaultdict(list)
    for label in FIXTURE.in_range():
        event = FIXTURE.events[label]
        counted[((event.created_at - T) // HOUR, event.kind)].append(event.pubkey)
    assert {k: (len(v), len(set(v))) for k, v in counted.items()} == EVENTS_HOURLY


def test_fct_events_hourly(world):
    rows = query(
        world.first_run,
        "select event_hour, kind, events, distinct_authors "
        "from main.fct_events_hourly order by all",
    )
    assert rows == sorted(
        (FIRST_HOUR + timedelta(hours=h), kind, n, authors)
        for (h, kind), (n, authors) in EVENTS_HOURLY.items()
    )
    assert sum(r[2] for r in rows) == 32


def test_fct_active_pubkeys_daily_excludes_gift_wraps(world):
    # alice, bob, carol and dave; neither the three one-time gift-wrap keys nor the zap
    # service (it signs receipts for others) count as people active that day
    rows = query(world.first_run, "select * from main.fct_active_pubkeys_daily")
    assert rows == [(DAY, 4, 4, 4, 4)]


def test_dim_relays(world):
    columns = (
        "discovery_source, is_guarded, latest_snapshot_hour, is_reachable, latest_error_class, "
        "latest_rtt_open_ms > 0 as has_rtt, has_nip11, latest_nip11_hour, relay_name, software, "
        "software_version, supported_nips, latest_ip, country_code, country_name, city, "
        "latitude, longitude, asn, as_organization, last_reachable_hour"
    )
    names = [c.split(" as ")[-1].strip() for c in columns.split(",")]
    rows = query(world.first_run, f"select relay_url, {columns} from main.dim_relays")
    found = {url: dict(zip(names, values, strict=True)) for url, *values in rows}
    hour = world.snapshot_hour
    live = {
        "discovery_source": "env",  # NOSTR_RELAYS
        "is_guarded": True,  # loopback: contacted only because the tests allow it
        "latest_snapshot_hour": hour,
        "is_reachable": True,
        "latest_error_class": None,
        "has_rtt": True,
        "has_nip11": True,
        "latest_nip11_hour": hour,
        "relay_name": "test relay",  # tests/relays.py config
        "software": NOSTR_RELAY_SOFTWARE,
        "software_version": nostr_relay.__version__,
        "supported_nips": NOSTR_RELAY_NIPS,
        "latest_ip": "127.0.0.1",
        **LOOPBACK_PLACE,  # the test .mmdb places 127.0.0.0/8 in Reykjavik
        **LOOPBACK_AS,
        "last_reachable_hour": hour,
    }
    dead = {name: None for name in names} | {
        "discovery_source": "nip65",  # alice's kind 10002 (#24)
        "is_guarded": True,
        "latest_snapshot_hour": hour,
        "is_reachable": False,
        "latest_error_class": "connection_refused",  # nothing listens on port 9
        "has_nip11": False,
    }
    assert found == {world.relay_x: live, world.relay_y: live, DEAD_RELAY: dead}


def test_dim_relays_first_seen_is_never_before_the_relay_was_known(world):
    rows = query(
        world.first_run,
        """
        select dim.relay_url, dim.first_seen_at, catalog.first_seen_at
        from main.dim_relays as dim
        inner join raw.relay_catalog as catalog using (relay_url)""",
    )
    assert len(rows) == 3
    assert [(url, seen >= known) for url, seen, known in rows] == [(u, True) for u, _, _ in rows]


def test_fct_relay_health_hourly(world):
    rows = query(
        world.first_run,
        "select snapshot_hour, relay_url, is_reachable, uptime_24h, "
        "snapshots_24h, uptime_7d, snapshots_7d "
        "from main.fct_relay_health_hourly order by relay_url",
    )
    hour = world.snapshot_hour
    # one snapshot each: the live relays were up in it, the dead one was not
    assert rows == sorted(
        [
            (hour, world.relay_x, True, 1.0, 1, 1.0, 1),
            (hour, world.relay_y, True, 1.0, 1, 1.0, 1),
            (hour, DEAD_RELAY, False, 0.0, 1, 0.0, 1),
        ]
    )


def test_fct_relays_by_country(world):
    rows = query(world.first_run, "select * from main.fct_relays_by_country")
    # both live relays are 127.0.0.1, located in Reykjavik; the dead one is not reachable
    assert rows == [
        (
            LOOPBACK_PLACE["country_code"],
            LOOPBACK_PLACE["country_name"],
            2,
            LOOPBACK_PLACE["latitude"],
            LOOPBACK_PLACE["longitude"],
        )
    ]


def test_fct_relay_coverage(world):
    rows = query(world.first_run, "select * from main.fct_relay_coverage order by relay_url")
    # X: 32 in range minus Y's 4 exclusives = 28 (28/32 = 0.875), 5 only on X;
    # Y: 32 minus X's 5 exclusives = 27 (27/32 = 0.84375), 4 only on Y
    assert rows == sorted([(world.relay_x, 28, 0.875, 5), (world.relay_y, 27, 0.84375, 4)])
    in_range = set(FIXTURE.in_range())
    assert len(FIXTURE.on_x & in_range) == 28 and len(FIXTURE.on_y & in_range) == 27


def test_fct_event_replication(world):
    rows = query(world.first_run, "select * from main.fct_event_replication order by all")
    assert rows == [(1, 9), (2, 23)]  # 5 + 4 on one relay, the other 23 on both


def test_int_zap_receipts_and_fct_zaps_daily(world):
    rows = query(
        world.first_run,
        "select event_id, claimed_amount_sats, is_amount_claimed, "
        "sender_pubkey, recipient_pubkey from main.int_zap_receipts",
    )
    assert sorted(rows) == sorted(
        [
            (
                FIXTURE.id("zap_bob_to_alice"),
                Decimal("250000"),
                True,
                PUBKEYS["bob"],
                PUBKEYS["alice"],
            ),  # lnbc2500u
            (
                FIXTURE.id("zap_carol_to_bob"),
                Decimal("1"),
                True,
                PUBKEYS["carol"],
                PUBKEYS["bob"],
            ),  # lnbc10n
            (FIXTURE.id("zap_dave_no_amount"), None, False, PUBKEYS["dave"], PUBKEYS["alice"]),
            (
                FIXTURE.id("zap_bob_to_dave_pico"),
                Decimal("2.5"),
                True,
                PUBKEYS["bob"],
                PUBKEYS["dave"],
            ),  # lnbc25000p
        ]
    )
    daily = query(world.first_run, "select * from main.fct_zaps_daily")
    # 4 receipts, 3 with an amount, 250000 + 1 + 2.5 sats; senders bob, carol, dave;
    # recipients alice, bob, dave
    assert daily == [(DAY, 4, 3, Decimal("250003.5"), 3, 3)]


def test_fct_long_form_daily(world):
    rows = query(world.first_run, "select * from main.fct_long_form_daily order by all")
    # alice's "intro" (current: the edit #17) counts on its published_at day, 2024-01-31;
    # bob's article (#18, no published_at) on its created_at day; carol's draft is deleted (#31)
    assert rows == [(date(2024, 1, 31), 1, 1), (DAY, 1, 1)]


def test_fct_top_reactions(world):
    rows = query(
        world.first_run,
        "select reaction_rank, event_id, author_pubkey, created_at, "
        "reactions, distinct_reactors from main.fct_top_reactions "
        "order by reaction_rank",
    )
    # alice_note: #6 (bob), #7 (carol, whose last e tag is #3), #30 (bob again) = 3 by 2 people.
    # bob_note: #19 (dave) only (#7's first e tag is thread context). dave_note_2: #29 (bob).
    # alice_note_deleted is deleted (#15), so #20 counts for nothing. Ties: lowest id first.
    singles = sorted(["bob_note", "dave_note_2"], key=FIXTURE.id)
    expected = [("alice_note", 3, 2), (singles[0], 1, 1), (singles[1], 1, 1)]
    assert rows == [
        (
            rank,
            FIXTURE.id(label),
            FIXTURE.events[label].pubkey,
            datetime.fromtimestamp(FIXTURE.events[label].created_at, UTC),
            n,
            reactors,
        )
        for rank, (label, n, reactors) in enumerate(expected, start=1)
    ]


def test_fct_nip_support_and_software_adoption(world):
    nips = query(world.first_run, "select * from main.fct_nip_support order by nip")
    # both live relays serve the same NIP-11 document; the dead relay serves none
    assert nips == [(nip, 2, 2, 1.0) for nip in NOSTR_RELAY_NIPS]
    software = query(world.first_run, "select * from main.fct_software_adoption")
    assert software == [(NOSTR_RELAY_SOFTWARE, nostr_relay.__version__, 2)]


def test_int_events_current_replaceable(world):
    rows = query(
        world.first_run,
        "select pubkey, kind, d_tag, event_id, versions_seen, "
        "is_deleted from main.int_events_current_replaceable",
    )
    expected = [
        ("alice", 0, "", "alice_profile_v2", 2, False),  # #13 replaces #1
        ("bob", 0, "", "bob_profile", 1, False),
        ("carol", 3, "", "carol_contacts_v2", 2, False),  # #14 replaces #5
        ("alice", 10002, "", "alice_relays", 1, False),
        ("alice", 30023, "intro", "alice_article_v2", 2, False),  # #17 replaces #8
        ("bob", 30023, "bob-post", "bob_article", 1, False),
        ("carol", 30023, "carol-draft", "carol_draft", 1, True),  # deleted by coordinate (#31)
    ]
    assert sorted(rows) == sorted(
        (PUBKEYS[who], kind, d, FIXTURE.id(label), versions, deleted)
        for who, kind, d, label, versions, deleted in expected
    )


def test_deletions_only_by_the_author(world):
    rows = query(
        world.first_run,
        "select event_id, deletion_event_id, deleted_via from main.int_event_deletions",
    )
    # #15 (alice, e tag) deletes her #12; #31 (carol, a tag) her draft #22; #16 (bob deleting
    # alice's #3) is ignored
    assert sorted(rows) == sorted(
        [
            (FIXTURE.id("alice_note_deleted"), FIXTURE.id("alice_deletes_note"), "e"),
            (FIXTURE.id("carol_draft"), FIXTURE.id("carol_deletes_draft"), "a"),
        ]
    )
    flagged = query(
        world.first_run, "select event_id from main.int_events_deduplicated where is_deleted"
    )
    assert {i for (i,) in flagged} == ids("alice_note_deleted", "carol_draft")


def test_relay_counts_per_event_follow_the_split(world):
    rows = dict(
        query(world.first_run, "select event_id, relay_count from main.int_events_deduplicated")
    )
    expected = {
        FIXTURE.id(label): (label in FIXTURE.on_x) + (label in FIXTURE.on_y)
        for label in FIXTURE.in_range()
    }
    assert rows == expected
    assert Counter(expected.values()) == {1: 9, 2: 23}


# --- Dagster: checks and idempotency --------------------------------------------------------


def test_dbt_tests_arrive_as_passing_asset_checks(world):
    evaluations = [e for r in world.results for e in r.get_asset_check_evaluations()]
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    assert failed == []
    checked = {e.asset_key.to_user_string() for e in evaluations}
    # the models whose .yml declares data tests, through each of a sequence's three dbt steps
    assert {
        "staging/stg_nostr__events",
        "marts/fct_events_hourly",
        "marts/fct_relay_health_hourly",
        "intermediate/int_event_deletions",
        "marts/dim_relays",
        "marts/fct_relay_coverage",
    } <= checked
    # the raw asset's own blocking checks passed too
    assert {"valid_event_share", "relays_reached"} <= {e.check_name for e in evaluations}


def test_dbt_tests_across_models_are_checks_not_phantom_assets(world):
    """A dbt test reading several models is a check of one of them; before, it was logged as
    observations of keys no definition has (`fct_relay_coverage`), which the UI listed."""
    known = load_definitions().resolve_asset_graph().get_all_asset_keys()
    events = [
        *(e for r in world.results for e in r.get_asset_observation_events()),
        *(e for r in world.results for e in r.get_asset_materialization_events()),
    ]
    assert {e.asset_key for e in events} <= known
    checks = {e.check_name for r in world.results for e in r.get_asset_check_evaluations()}
    assert {
        "assert_exclusive_events_match_replication",
        "assert_replication_sums_to_events",
    } <= checks


def test_running_everything_twice_gives_identical_marts(world):
    first, second = warehouse_tables(world.first_run), warehouse_tables(world.second_run)
    assert {name.removeprefix("main.") for name in first} >= {
        "fct_events_hourly",
        "fct_active_pubkeys_daily",
        "dim_relays",
        "fct_relay_health_hourly",
        "fct_relays_by_country",
        "fct_relay_coverage",
        "fct_event_replication",
        "fct_zaps_daily",
        "fct_long_form_daily",
        "fct_top_reactions",
        "fct_nip_support",
        "fct_software_adoption",
        "int_events_current_replaceable",
        "int_event_deletions",
        "int_events_deduplicated",
        "int_zap_receipts",
        "raw.nostr_events",
        "raw.event_relay_sightings",
        "raw.relay_geolocations",
    }
    for name in sorted(first):
        assert second[name] == first[name], name


def test_dbt_tables_report_their_row_counts(world):
    # fetch_row_counts: every table dbt built says how many rows it holds (views do not).
    counted = {
        event.asset_key.to_user_string(): event.materialization.metadata["dagster/row_count"].value
        for result in world.results[-6:]  # the second sequence: the final warehouse
        for event in result.get_asset_materialization_events()
        if "dagster/row_count" in event.materialization.metadata
        and event.asset_key.path[0] in ("intermediate", "marts")
    }
    tables = {
        f"{'marts' if name.startswith(('fct_', 'dim_')) else 'intermediate'}/{name}"
        for (name,) in query(
            world.second_run, "select table_name from duckdb_tables() where schema_name = 'main'"
        )
    }
    assert set(counted) == tables, set(counted) ^ tables
    for key, rows in counted.items():
        stored = query(world.second_run, f"select count(*) from main.{key.split('/')[1]}")
        assert rows == stored[0][0], key
