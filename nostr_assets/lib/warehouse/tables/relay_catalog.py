"""raw.relay_catalog: every relay URL ever known, where it came from, and the guard's verdict.

Rows are merged in SQL by ``upsert_catalog`` (first_seen_at and the original source survive).
"""

from datetime import datetime

import duckdb

from nostr_assets.lib.warehouse.lake import is_lake
from nostr_assets.lib.warehouse.raw_table import RawTable, in_transaction

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


# The file's upsert uses the primary key; a DuckLake has none (``on conflict`` needs one), so
# there the same change is a MERGE on relay_url, one statement and so one transaction.
_ON_CONFLICT = """
    insert into raw.relay_catalog
        (relay_url, source, first_seen_at, last_seen_at, is_guarded, guard_reason)
    select relay_url, source, $now, $now, is_guarded, guard_reason from incoming
    on conflict (relay_url) do update set
        last_seen_at = excluded.last_seen_at,
        is_guarded = excluded.is_guarded,
        guard_reason = excluded.guard_reason
"""
_MERGE = """
    merge into raw.relay_catalog as stored
    using (select * from incoming) as found
    on stored.relay_url = found.relay_url
    when matched then update set
        last_seen_at = $now,
        is_guarded = found.is_guarded,
        guard_reason = found.guard_reason
    when not matched then insert
        (relay_url, source, first_seen_at, last_seen_at, is_guarded, guard_reason)
        values (found.relay_url, found.source, $now, $now, found.is_guarded, found.guard_reason)
"""


def upsert_catalog(conn: duckdb.DuckDBPyConnection, now: datetime) -> None:
    """Merge the registered relation ``incoming`` (relay_url, source, is_guarded,
    guard_reason; one row per URL) into raw.relay_catalog: new URLs are added, known ones get
    ``last_seen_at = now`` and the guard's new verdict."""
    sql = _MERGE if is_lake(conn) else _ON_CONFLICT
    in_transaction(conn, lambda: conn.execute(sql, {"now": now}))
