"""Landing one crawled hour in DuckDB: events, sightings and per-relay fetch stats.

Events are immutable once their id and signature verify, so a re-crawl can only add to what an
earlier crawl saw. The window is therefore replaced, slice of event ids by slice (one
transaction each), by the union of the stored rows and the new ones, keeping each row's
earliest `first_seen_at`:
re-materialising gives identical rows, and a relay that is down during a re-run does not erase
what it served before.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from nostr_assets.lib.network.crawler import CrawlResult
from nostr_assets.lib.warehouse.lake import is_lake
from nostr_assets.lib.warehouse.landing import Rows, arrow_table, check_key
from nostr_assets.lib.warehouse.raw_table import RAW_SCHEMA, in_transaction, scalar
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import Columns, event_rows


def crawl_rows(results: list[CrawlResult]) -> tuple[Columns, Columns]:
    """The events and sightings rows of ``crawler.CrawlResult``s (windows that do not overlap)."""
    first_seen: dict[str, float] = {}
    events = [e for result in results for e in result.events]
    all_sightings = [s for result in results for s in result.sightings]
    for sighting in all_sightings:
        earlier = first_seen.get(sighting.event_id, sighting.first_seen_at)
        first_seen[sighting.event_id] = min(sighting.first_seen_at, earlier)
    created = {e.id: e.created_at for e in events}
    sightings = sighting_rows(
        ((s.event_id, s.relay_url, s.first_seen_at) for s in all_sightings), created
    )
    return event_rows(events, first_seen), sightings


# Events merged per slice of a window: DuckDB's memory for a merge grows with its rows (an hour
# of 80,000 events, merged at once, needed more than 1 GB and took the process to 3.5 GB).
MERGE_SLICE_EVENTS = 10_000


def land_window(
    conn: duckdb.DuckDBPyConnection,
    start: datetime,
    end: datetime,
    events: Rows,
    sightings: Rows,
    fetch_stats: Rows | None = None,
) -> tuple[int, int]:
    """Merge one window's events and sightings into the raw tables; return the window's totals.

    The merge runs slice by slice of event ids (a hash of the id, so a slice holds each of its
    events with all their sightings and their relay count), one transaction per slice, so
    DuckDB's memory is bounded by a slice however many events the window holds. A run stopped
    between slices leaves every slice either merged or as it was: nothing stored is lost, and
    the next landing of the window completes it. ``fetch_stats`` (rows for
    raw.relay_fetch_stats) replace the window's earlier stats, in the last transaction: they
    describe the latest fetch, not an accumulation.
    """
    events = arrow_table(conn, "nostr_events", events)
    sightings = arrow_table(conn, "event_relay_sightings", sightings)
    if fetch_stats is not None:
        fetch_stats = arrow_table(conn, "relay_fetch_stats", fetch_stats)
    raw = RAW_SCHEMA
    window = [start, end]
    stored = scalar(
        conn,
        f"select count(*) from {raw}.nostr_events where created_hour >= $1 and created_hour < $2",
        window,
    )
    slices = max(1, -(-max(len(events), stored) // MERGE_SLICE_EVENTS))
    totals = [0, 0]
    conn.register("incoming_events", events)
    conn.register("incoming_sightings", sightings)
    try:
        lake = is_lake(conn)
        for part in range(slices):
            last = part == slices - 1
            merged = _land_slice(
                conn,
                window,
                f"hash(event_id) % {slices} = {part}",
                prepare_outside=lake,
                fetch_stats=fetch_stats if last else None,
            )
            totals[0] += merged[0]
            totals[1] += merged[1]
    finally:
        for name in ("incoming_events", "incoming_sightings"):
            conn.unregister(name)
    return totals[0], totals[1]


def _land_slice(
    conn: duckdb.DuckDBPyConnection,
    window: list[datetime],
    in_slice: str,
    prepare_outside: bool,
    fetch_stats: Rows | None,
) -> tuple[int, int]:
    """Merge one slice of the window in one transaction (with ``fetch_stats``, when given).

    On a lake (``prepare_outside``) the merge is prepared before the transaction, so writers
    merge side by side and take turns (a SQLite catalog) only to write; the transaction checks
    that the slice is still what was merged from, and merges again if another writer changed
    it. The prepared tables are only read inside the transaction, so a lost attempt leaves them
    as they were. The file has one writer: it merges inside the transaction. A transaction that
    loses to another writer runs again, from what is stored by then."""
    prepared = None
    if prepare_outside:
        prepared = _stored_fingerprint(conn, window, in_slice)
        _prepare_merge(conn, window, in_slice)

    def write() -> tuple[int, int]:
        if prepared is None or _stored_fingerprint(conn, window, in_slice) != prepared:
            _prepare_merge(conn, window, in_slice)
        merged = _write_merge(conn, window, in_slice)
        if fetch_stats is not None:
            _replace_fetch_stats(conn, window, fetch_stats)
        return merged

    try:
        return in_transaction(conn, write)
    finally:
        conn.execute("drop table if exists merged_events")
        conn.execute("drop table if exists merged_sightings")


def _replace_fetch_stats(conn: duckdb.DuckDBPyConnection, window: list[datetime], rows) -> None:
    conn.register("incoming_stats", rows)
    try:
        conn.execute(
            f"delete from {RAW_SCHEMA}.relay_fetch_stats "
            "where created_hour >= $1 and created_hour < $2",
            window,
        )
        conn.execute(
            f"insert into {RAW_SCHEMA}.relay_fetch_stats by name select * from incoming_stats"
        )
        if is_lake(conn):
            check_key(conn, "relay_fetch_stats", "created_hour >= $1 and created_hour < $2", window)
    finally:
        conn.unregister("incoming_stats")


def _stored_fingerprint(
    conn: duckdb.DuckDBPyConnection, window: list[datetime], in_slice: str
) -> tuple:
    """What is stored of one slice of the window, in two numbers per table: equal fingerprints
    mean the same rows, so a merge prepared from them is still the merge to write."""
    stored = f"created_hour >= $1 and created_hour < $2 and {in_slice}"
    row = conn.execute(
        f"""
        select
            (select count(*) from {RAW_SCHEMA}.nostr_events where {stored}),
            (select coalesce(sum(hash(event_id, first_seen_at)), 0)
             from {RAW_SCHEMA}.nostr_events where {stored}),
            (select count(*) from {RAW_SCHEMA}.event_relay_sightings where {stored}),
            (select coalesce(sum(hash(event_id, relay_url, first_seen_at)), 0)
             from {RAW_SCHEMA}.event_relay_sightings where {stored})
        """,
        window,
    ).fetchone()
    return tuple(row or ())


def _prepare_merge(conn: duckdb.DuckDBPyConnection, window: list[datetime], in_slice: str) -> None:
    """The union of the stored rows of one slice of the window's event ids with the incoming
    ones, each row keeping its earliest ``first_seen_at``, as temporary tables."""
    raw = RAW_SCHEMA
    stored = f"created_hour >= $1 and created_hour < $2 and {in_slice}"
    conn.execute(
        f"""
        create or replace temp table merged_sightings as
        select event_id, relay_url, any_value(created_hour) as created_hour,
               min(first_seen_at) as first_seen_at
        from (
            select * from {raw}.event_relay_sightings where {stored}
            union all by name
            select * from incoming_sightings where {in_slice}
        )
        group by event_id, relay_url
        """,
        window,
    )
    conn.execute(
        f"""
        create or replace temp table merged_events as
        with candidates as (
            select * exclude (relay_count) from {raw}.nostr_events where {stored}
            union all by name
            select * from incoming_events where {in_slice}
        ),
        earliest as (
            select event_id, min(first_seen_at) as first_seen_at
            from candidates group by event_id
        ),
        relay_counts as (
            select event_id, count(*)::integer as relay_count
            from merged_sightings group by event_id
        )
        select c.* replace (e.first_seen_at as first_seen_at),
               coalesce(r.relay_count, 0)::integer as relay_count
        from (select * from candidates qualify row_number() over (
                  partition by event_id order by first_seen_at) = 1) as c
        join earliest as e using (event_id)
        left join relay_counts as r using (event_id)
        """,
        window,
    )


def _write_merge(
    conn: duckdb.DuckDBPyConnection, window: list[datetime], in_slice: str
) -> tuple[int, int]:
    """Replace the stored rows of one slice by the prepared merge; return its row counts."""
    raw = RAW_SCHEMA
    stored = f"created_hour >= $1 and created_hour < $2 and {in_slice}"
    for table in ("nostr_events", "event_relay_sightings"):
        conn.execute(f"delete from {raw}.{table} where {stored}", window)
    conn.execute(
        f"insert into {raw}.nostr_events by name select * from merged_events order by event_id"
    )
    conn.execute(
        f"insert into {raw}.event_relay_sightings by name "
        "select * from merged_sightings order by event_id, relay_url"
    )
    return (
        scalar(conn, "select count(*) from merged_events"),
        scalar(conn, "select count(*) from merged_sightings"),
    )
