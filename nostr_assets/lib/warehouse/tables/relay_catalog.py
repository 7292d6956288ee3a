"""raw.relay_catalog: every relay URL ever known, where it came from, and the guard's verdict.

Rows are merged in SQL by the relay_catalog asset (an upsert keeps ``first_seen_at``).
"""

from nostr_assets.lib.warehouse.raw_table import RawTable

TABLE = RawTable(
    name="relay_catalog",
    grain="One row per relay URL ever known.",
    columns="""
        relay_url        varchar primary key,
        source           varchar not null,   -- bootstrap | env | nip65 | contacts | hint
        first_seen_at    timestamptz not null,
        last_seen_at     timestamptz not null,
        is_guarded       boolean not null,   -- resolves to a private/loopback/... address
        guard_reason     varchar
    """,
)
