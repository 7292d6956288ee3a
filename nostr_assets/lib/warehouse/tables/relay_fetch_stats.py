"""raw.relay_fetch_stats: what the crawl of one relay's window saw."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from nostr_assets.lib.network.window_reader import WindowStats
from nostr_assets.lib.warehouse.raw_table import RawTable

TABLE = RawTable(
    name="relay_fetch_stats",
    grain="One row per relay and fetched hour: what the crawl of that window saw.",
    time_column="created_hour",
    columns="""
        created_hour         timestamptz not null,
        relay_url            varchar not null,
        fetched_at           timestamptz not null,
        events               integer not null,
        duplicates           integer not null,
        invalid_ids          integer not null,
        invalid_signatures   integer not null,
        invalid_other        integer not null,
        bad_frames           integer not null,
        stray_events         integer not null default 0, -- EVENTs for no open subscription
        pages                integer not null,
        possibly_truncated   boolean not null,
        eose_received        boolean not null,
        closed_prefix        varchar,
        bytes_received       bigint not null,
        time_to_open_ms      double,
        time_to_first_event_ms double,
        error_class          varchar,
        primary key (created_hour, relay_url)
    """,
)


def fetch_stats_rows(hour: datetime, fetched_at: datetime, stats: Iterable[WindowStats]):
    """One row per relay for ``hour``: the counters of its ``WindowStats``."""
    rows = []
    for s in stats:
        rows.append(
            {
                "created_hour": hour,
                "relay_url": s.relay_url,
                "fetched_at": fetched_at,
                "events": s.events,
                "duplicates": s.duplicates,
                "invalid_ids": s.invalid_ids,
                "invalid_signatures": s.invalid_signatures,
                "invalid_other": sum(s.invalid.values()) - s.invalid_ids - s.invalid_signatures,
                "bad_frames": sum(s.bad_frames.values()),
                "stray_events": s.stray_events,
                "pages": s.pages,
                "possibly_truncated": s.possibly_truncated,
                "eose_received": s.eose_received,
                "closed_prefix": s.closed_prefix or None,
                "bytes_received": s.bytes_received,
                "time_to_open_ms": s.time_to_open_ms,
                "time_to_first_event_ms": s.time_to_first_event_ms,
                "error_class": s.error_class,
            }
        )
    return rows
