"""A small hand-crafted raw dataset for the dbt tests (and the dashboard's, over the same marts),
written through ``ensure_raw_tables``.

Every number the dbt tests expect is computed by hand from the rows below (see the comments in
``test_dbt_models.py``). Events need no valid signatures at this layer: dbt trusts ``raw``.

Time line (UTC), T0 = 2024-01-01 10:00:00 = 1704103200:
- hour 10: notes, profile v1, two kind-3 versions tied on created_at, three articles, three
  deletions (own note, someone else's note, own article by coordinate), a zap, a gift wrap, an
  auth event, three reactions;
- hour 11: a note, profile v2, a reaction, a zap; hour 12: an article edit, a zap without amount;
- a gift wrap dated a day back, two notes the next day (one by a new author) and a note dated
  ten days ahead of when it was seen (a forged clock).
Relays: relay.one holds events #1-#20, relay.two #11-#27; relay.three is reachable only at 12:00
and serves no NIP-11 document and has no geolocation.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables import RAW_TABLES

T0 = 1704103200  # 2024-01-01 10:00:00 UTC

ALICE, BOB, CAROL, DAVE, EVE = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64)
ZAPPER = "f" * 64  # the LNURL server that publishes receipts
WRAP1, WRAP2 = "1" * 64, "2" * 64  # gift-wrap one-time keys

R1, R2, R3 = "wss://relay.one", "wss://relay.two", "wss://relay.three"


def eid(n: int) -> str:
    """Event #n's id: 64 hex, so lower n means lower id."""
    return f"{n:064x}"


def _zap(sender: str, recipient: str, bolt11: str, note: int | None = None) -> list[list[str]]:
    request = {"kind": 9734, "pubkey": sender, "tags": [["p", recipient]], "content": ""}
    tags = [["p", recipient]]
    if note is not None:
        tags.append(["e", eid(note)])
    return [*tags, ["bolt11", bolt11], ["description", json.dumps(request)]]


# (number, pubkey, created_at, kind, tags, seconds between created_at and first seen)
EVENTS: list[tuple[int, str, int, int, list[list[str]], int]] = [
    # hour 10
    (1, ALICE, T0 + 60, 1, [], 30),
    (2, BOB, T0 + 120, 1, [], 30),
    (3, ALICE, T0 + 100, 0, [], 30),
    (4, BOB, T0 + 200, 3, [["p", ALICE]], 30),  # tie with #5 on created_at: #4 (lower id) wins
    (5, BOB, T0 + 200, 3, [["p", CAROL]], 30),
    (6, ALICE, T0 + 300, 30023, [["d", "intro"], ["published_at", str(T0 + 300)]], 30),
    (7, BOB, T0 + 400, 30023, [["d", "bob-post"]], 30),
    (8, CAROL, T0 + 500, 30023, [["d", "gone"]], 30),
    (9, CAROL, T0 + 600, 5, [["a", f"30023:{CAROL}:gone"]], 30),  # own article: applies
    (10, ALICE, T0 + 700, 5, [["e", eid(1)]], 30),  # own note: applies
    (11, BOB, T0 + 800, 5, [["e", eid(18)]], 30),  # carol's note: ignored
    (12, ZAPPER, T0 + 900, 9735, _zap(DAVE, BOB, "lnbc2500u1pvjluezpp5qqqsyqcyq5rq", 2), 30),
    (13, WRAP2, T0 + 1000, 1059, [["p", BOB]], 30),
    (14, EVE, T0 + 50, 22242, [["relay", R1], ["challenge", "x"]], 30),
    (15, DAVE, T0 + 1100, 7, [["e", eid(1)], ["e", eid(2)], ["p", BOB]], 30),  # last e: #2
    (16, CAROL, T0 + 1200, 7, [["e", eid(2)]], 30),
    (17, DAVE, T0 + 1300, 7, [["e", eid(1)]], 30),  # targets the deleted note #1
    # hour 11
    (18, CAROL, T0 + 3610, 1, [], 30),
    (19, ALICE, T0 + 3700, 0, [], 30),
    (20, ALICE, T0 + 3800, 7, [["e", eid(18)]], 30),
    (21, ZAPPER, T0 + 4500, 9735, _zap(CAROL, BOB, "lnbc10n1pjq2rq3pp5xyz"), 30),
    # hour 12
    (22, ALICE, T0 + 7250, 30023, [["d", "intro"], ["published_at", str(T0 + 300)]], 30),
    (23, ZAPPER, T0 + 8100, 9735, _zap(DAVE, ALICE, "lnbc1pjq2rq3pp5xyz"), 30),
    # elsewhere in time
    (24, WRAP1, T0 - 86400, 1059, [["p", CAROL]], 86400 + 1000),  # randomised a day back
    (25, BOB, T0 + 82800, 1, [], 30),  # 2024-01-02 09:00:00
    (26, EVE, T0 + 82900, 1, [], 30),  # 2024-01-02 09:01:40, eve's first counted event
    (27, DAVE, T0 + 864000, 1, [], -864000 + 1500),  # dated 2024-01-11, seen 2024-01-01
]

SNAPSHOT_HOURS = [T0, T0 + 3600, T0 + 7200]


def _ts(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def _hour(unix: int) -> datetime:
    return _ts(unix - unix % 3600)


def _relays_of(n: int) -> list[str]:
    return [r for r, held in ((R1, n <= 20), (R2, n >= 11)) if held]


def _nip11(software: str, version: str, nips: list[int], paid: bool) -> dict:
    doc = {"software": software, "version": version, "supported_nips": nips}
    return {
        "nip11_raw": json.dumps(doc),
        "software": software,
        "software_version": version,
        "supported_nips": nips,
        "payment_required": paid,
        "auth_required": paid,
    }


STRFRY = "git+https://github.com/hoytech/strfry.git"
RS_RELAY = "https://git.sr.ht/~gheartsfield/nostr-rs-relay"


def _observed(reads: bool, auth: bool, count: bool | None, negentropy: bool | None) -> dict:
    """What the probe saw the relay do (raw.relay_snapshots' capability columns)."""
    return {
        "reads_without_auth": reads,
        "requires_auth_for_read": auth,
        "answers_count": count,
        "answers_negentropy": negentropy,
    }


def _snapshots() -> list[dict]:
    h10, h11, h12 = (_ts(h) for h in SNAPSHOT_HOURS)
    rows = []
    for hour, version in ((h10, "1.0.0"), (h11, "1.0.1"), (h12, "1.0.1")):
        rtt = 100 + 10 * (hour.hour - 10)
        rows.append(
            {
                "snapshot_hour": hour,
                "relay_url": R1,
                "is_reachable": True,
                "rtt_open_ms": rtt,
                "rtt_read_ms": 50.0,
                "connected_ip": "203.0.113.1",
                **_nip11(STRFRY, version, [1, 2, 9, 11], False),
                **_observed(reads=True, auth=False, count=True, negentropy=False),
            }
        )
    for hour in (h10, h11):
        rows.append(
            {
                "snapshot_hour": hour,
                "relay_url": R2,
                "is_reachable": True,
                "rtt_open_ms": 300.0,
                "rtt_read_ms": 80.0,
                "connected_ip": "198.51.100.7",
                **_nip11(RS_RELAY, "0.9.0", [1, 11, 42], True),
                # Demanded AUTH to read: COUNT and negentropy are then not tested.
                **_observed(reads=False, auth=True, count=None, negentropy=None),
            }
        )
    rows.append(
        {
            "snapshot_hour": h12,
            "relay_url": R2,
            "is_reachable": False,
            "error_class": "timeout_connect",
            # As a version before the one vocabulary of failures wrote it: staging recodes it.
            "nip11_error": "refused:loopback",
        }
    )
    rows.append(
        {
            "snapshot_hour": h12,
            "relay_url": R3,
            "is_reachable": True,
            "rtt_open_ms": 40.0,
            "rtt_read_ms": 20.0,
            "connected_ip": "192.0.2.9",
            **_observed(reads=True, auth=False, count=False, negentropy=False),
            "nip11_error": "http_404",  # before the vocabulary; today http_status
        }
    )
    for row in rows:
        row["observed_at"] = row["snapshot_hour"] + timedelta(minutes=5)
    return rows


def _geolocations() -> list[dict]:
    h10, h11, h12 = (_ts(h) for h in SNAPSHOT_HOURS)
    de = {
        "relay_url": R1,
        "ip": "203.0.113.1",
        "country_code": "DE",
        "country_name": "Germany",
        "city": "Frankfurt",
        "latitude": 50.1,
        "longitude": 8.7,
        "asn": 24940,
    }
    us = {
        "relay_url": R2,
        "ip": "198.51.100.7",
        "country_code": "US",
        "country_name": "United States",
        "city": "Ashburn",
        "latitude": 39.0,
        "longitude": -77.5,
        "asn": 16509,
    }
    return [{**de, "snapshot_hour": h} for h in (h10, h11, h12)] + [
        {**us, "snapshot_hour": h} for h in (h10, h11)
    ]


def _insert(conn: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    for row in rows:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        conn.execute(f"insert into raw.{table} ({columns}) values ({marks})", list(row.values()))


def event_rows() -> list[dict]:
    rows = []
    for n, pubkey, created_at, kind, tags, seen_after in EVENTS:
        rows.append(
            {
                "event_id": eid(n),
                "pubkey": pubkey,
                "created_at": created_at,
                "created_hour": _hour(created_at),
                "kind": kind,
                "tags": json.dumps(tags),
                "content": "+" if kind == 7 else f"event {n}",
                "sig": "0" * 128,
                "raw_json": "{}",
                "first_seen_at": _ts(created_at + seen_after),
                "relay_count": len(_relays_of(n)),
            }
        )
    return rows


def write_raw_fixture(path: Path) -> None:
    """Create the raw tables in the DuckDB file at ``path`` and fill them with the fixture."""
    conn = duckdb.connect(str(path))
    try:
        conn.execute("set TimeZone = 'UTC'")
        ensure_raw_tables(conn)
        catalog_seen = _ts(T0 - 7200)
        _insert(
            conn,
            "relay_catalog",
            [
                {
                    "relay_url": r,
                    "source": "bootstrap",
                    "first_seen_at": catalog_seen,
                    "last_seen_at": _ts(T0 + 7200),
                    "is_guarded": False,
                }
                for r in (R1, R2, R3)
            ],
        )
        events = event_rows()
        _insert(conn, "nostr_events", events)
        _insert(
            conn,
            "event_relay_sightings",
            [
                {
                    "event_id": e["event_id"],
                    "relay_url": relay,
                    "created_hour": e["created_hour"],
                    "first_seen_at": e["first_seen_at"],
                }
                for n, e in enumerate(events, start=1)
                for relay in _relays_of(n)
            ],
        )
        _insert(conn, "relay_snapshots", _snapshots())
        _insert(conn, "relay_geolocations", _geolocations())
    finally:
        conn.close()


def copy_raw_tables(conn: duckdb.DuckDBPyConnection, file: Path) -> None:
    """The raw tables of the DuckDB file at ``file`` copied into ``conn``'s current database
    (a lake), created there first: the same rows on both warehouses."""
    ensure_raw_tables(conn)
    conn.execute(f"attach '{file}' as fixture (read_only)")
    try:
        for table in RAW_TABLES:
            conn.execute(f"insert into raw.{table} select * from fixture.raw.{table}")
    finally:
        conn.execute("detach fixture")
