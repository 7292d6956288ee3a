"""Landing a window of events and sightings: a union with what is stored, slice by slice.

Protects the merge against slicing mistakes (an event landed apart from its sightings, a
relay count taken over one slice, a stored row dropped), by comparing windows landed in
slices of 2 events with the same windows landed whole.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from relays import BASE_HOUR, SECRET_KEYS

from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.warehouse import event_landing
from nostr_assets.lib.warehouse.event_landing import land_window
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows

HOUR = datetime.fromtimestamp(BASE_HOUR, UTC)
EVENTS = [
    sign_event(SECRET_KEYS[i % 4], BASE_HOUR + 60 * i, 1, [], f"n{i}", bytes(32)) for i in range(12)
]


def rows(seen: dict[str, float], relays: dict[str, list[str]]):
    events = [e for e in EVENTS if e.id in seen]
    created = {e.id: e.created_at for e in EVENTS}
    pairs = [
        (event_id, relay, seen[event_id]) for event_id, urls in relays.items() for relay in urls
    ]
    return event_rows(events, seen), sighting_rows(pairs, created)


def landed(path, slice_events: int, monkeypatch) -> tuple[list, list]:
    monkeypatch.setattr(event_landing, "MERGE_SLICE_EVENTS", slice_events)
    first = {e.id: BASE_HOUR + 100.0 + i for i, e in enumerate(EVENTS[:8])}
    second = {e.id: BASE_HOUR + 50.0 + i for i, e in enumerate(EVENTS[4:])}  # earlier sightings
    with duckdb.connect(str(path)) as conn:
        ensure_raw_tables(conn)
        for seen, relay in ((first, "wss://a.example"), (second, "wss://b.example")):
            events, sightings = rows(seen, {event_id: [relay] for event_id in seen})
            totals = land_window(conn, HOUR, HOUR + timedelta(hours=1), events, sightings)
        assert totals == (12, 16)
        stored = (
            conn.execute("select * from raw.nostr_events order by event_id").fetchall(),
            conn.execute("select * from raw.event_relay_sightings order by all").fetchall(),
        )
        # Landing the last window again changes nothing.
        land_window(conn, HOUR, HOUR + timedelta(hours=1), events, sightings)
        assert (
            conn.execute("select * from raw.nostr_events order by event_id").fetchall() == stored[0]
        )
    return stored


@pytest.mark.parametrize("slice_events", [1, 2, 5])
def test_a_window_merged_in_slices_equals_one_merged_whole(tmp_path, monkeypatch, slice_events):
    whole = landed(tmp_path / "whole.duckdb", 10_000, monkeypatch)
    sliced = landed(tmp_path / "sliced.duckdb", slice_events, monkeypatch)
    assert sliced == whole
    events, sightings = whole
    assert len(events) == 12 and len(sightings) == 16
    counts = {row[0]: row[-1] for row in events}  # relay_count, the last column
    assert sorted(counts.values()) == [1] * 8 + [2] * 4  # events 4..7 on both relays
