"""raw.event_relay_sightings: which relay served which event, first seen when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from nostr_assets.lib.warehouse.raw_table import RawTable
from nostr_assets.lib.warehouse.tables.nostr_events import Columns, hour_of

TABLE = RawTable(
    name="event_relay_sightings",
    grain="One row per event id and relay that served it.",
    time_column="created_hour",
    columns="""
        event_id         varchar not null,
        relay_url        varchar not null,
        created_hour     timestamptz not null,
        first_seen_at    timestamptz not null,
        primary key (event_id, relay_url)
    """,
)


def sighting_rows(
    sightings: Iterable[tuple[str, str, float]], created_at_by_id: dict[str, int]
) -> Columns:
    """raw.event_relay_sightings columns for (event_id, relay_url, first seen) of events in
    ``created_at_by_id``."""
    columns: Columns = {"event_id": [], "relay_url": [], "created_hour": [], "first_seen_at": []}
    for event_id, relay_url, seen_at in sightings:
        created_at = created_at_by_id.get(event_id)
        if created_at is None:
            continue
        columns["event_id"].append(event_id)
        columns["relay_url"].append(relay_url)
        columns["created_hour"].append(hour_of(created_at))
        columns["first_seen_at"].append(datetime.fromtimestamp(seen_at, UTC))
    return columns
