"""raw.nostr_events: every verified event, once (id and BIP-340 signature checked)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from nostr_assets.lib.protocol.event import Event, encode_event
from nostr_assets.lib.warehouse.raw_table import RawTable

TABLE = RawTable(
    name="nostr_events",
    grain="One row per event id (verified: id and BIP-340 signature).",
    time_column="created_hour",
    columns="""
        event_id         varchar primary key,
        pubkey           varchar not null,
        created_at       bigint not null,    -- unix seconds, as signed
        created_hour     timestamptz not null, -- partition: hour of created_at, UTC
        kind             integer not null,
        tags             varchar not null,   -- JSON array of arrays of strings
        content          varchar not null,
        sig              varchar not null,
        raw_json         varchar not null,   -- canonical compact JSON of the event
        first_seen_at    timestamptz not null,
        relay_count      integer not null    -- computed while landing, from the sightings
    """,
)

Columns = dict[str, list]


def hour_of(created_at: int) -> datetime:
    return datetime.fromtimestamp(created_at - created_at % 3600, UTC)


def event_rows(events: Iterable[Event], first_seen: dict[str, float]) -> Columns:
    """raw.nostr_events columns (relay_count is computed while landing)."""
    encode = msgspec.json.encode
    columns: Columns = {
        name: []
        for name in (
            "event_id",
            "pubkey",
            "created_at",
            "created_hour",
            "kind",
            "tags",
            "content",
            "sig",
            "raw_json",
            "first_seen_at",
        )
    }
    for ev in events:
        columns["event_id"].append(ev.id)
        columns["pubkey"].append(ev.pubkey)
        columns["created_at"].append(ev.created_at)
        columns["created_hour"].append(hour_of(ev.created_at))
        columns["kind"].append(ev.kind)
        columns["tags"].append(encode(ev.tags).decode())
        columns["content"].append(ev.content)
        columns["sig"].append(ev.sig)
        columns["raw_json"].append(encode_event(ev).decode())
        columns["first_seen_at"].append(datetime.fromtimestamp(first_seen[ev.id], UTC))
    return columns
