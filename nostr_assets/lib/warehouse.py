"""The raw tables that Python assets land in DuckDB, and the idempotent window replace.

The DDL here is the contract between the Python assets and dbt's sources: one place, so a
column cannot drift between the writer and `dbt_project/models/staging/_nostr__sources.yml`.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

RAW_SCHEMA = "raw"

RAW_TABLES: dict[str, str] = {
    # One row per relay URL ever known.
    "relay_catalog": """
        relay_url        varchar primary key,
        source           varchar not null,   -- bootstrap | env | nip65 | contacts | hint
        first_seen_at    timestamptz not null,
        last_seen_at     timestamptz not null,
        is_guarded       boolean not null,   -- resolves to a private/loopback/... address
        guard_reason     varchar
    """,
    # One row per relay and snapshot hour.
    "relay_snapshots": """
        snapshot_hour        timestamptz not null,
        relay_url            varchar not null,
        observed_at          timestamptz not null,
        observation_source   varchar not null default 'probe', -- probe (ours) | nip66
        monitor_pubkey       varchar,            -- the NIP-66 monitor, for nip66 rows
        dns_addresses        varchar[],
        connected_ip         varchar,
        is_reachable         boolean not null,
        error_class          varchar,
        error_message        varchar,
        rtt_open_ms          double,
        rtt_read_ms          double,
        rtt_nip11_ms         double,
        nip11_status_code    integer,
        nip11_raw            varchar,
        nip11_error          varchar,
        relay_name           varchar,
        relay_description    varchar,
        relay_pubkey         varchar,
        relay_contact        varchar,
        software             varchar,
        software_version     varchar,
        supported_nips       integer[],
        max_limit            bigint,
        max_message_length   bigint,
        max_subscriptions    bigint,
        payment_required     boolean,
        auth_required        boolean,
        restricted_writes    boolean,
        primary key (snapshot_hour, relay_url)
    """,
    # One row per relay and snapshot hour that had a connected IP.
    "relay_geolocations": """
        snapshot_hour        timestamptz not null,
        relay_url            varchar not null,
        ip                   varchar not null,
        country_code         varchar,
        country_name         varchar,
        city                 varchar,
        latitude             double,
        longitude            double,
        asn                  bigint,
        as_organization      varchar,
        city_db_edition      varchar,
        city_db_built_at     timestamptz,
        asn_db_edition       varchar,
        asn_db_built_at      timestamptz,
        primary key (snapshot_hour, relay_url)
    """,
    # One row per event id (verified: id and BIP-340 signature).
    "nostr_events": """
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
        relay_count      integer not null
    """,
    # One row per event id and relay that served it.
    "event_relay_sightings": """
        event_id         varchar not null,
        relay_url        varchar not null,
        created_hour     timestamptz not null,
        first_seen_at    timestamptz not null,
        primary key (event_id, relay_url)
    """,
    # One row per relay and fetched hour: what the crawl of that window saw.
    "relay_fetch_stats": """
        created_hour         timestamptz not null,
        relay_url            varchar not null,
        fetched_at           timestamptz not null,
        events               integer not null,
        duplicates           integer not null,
        invalid_ids          integer not null,
        invalid_signatures   integer not null,
        invalid_other        integer not null,
        bad_frames           integer not null,
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
}


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"create schema if not exists {RAW_SCHEMA}")
    for table, columns in RAW_TABLES.items():
        conn.execute(f"create table if not exists {RAW_SCHEMA}.{table} ({columns})")


Rows = pa.Table | list[dict] | dict[str, list]


def arrow_table(conn: duckdb.DuckDBPyConnection, table: str, rows: Rows) -> pa.Table:
    """``rows`` (dicts, or columns) as Arrow typed by the raw table's own DDL.

    Asking DuckDB for the schema keeps ``RAW_TABLES`` the only place a column type is written;
    the columns ``rows`` leaves out (computed while landing) are simply not in the result.
    """
    if isinstance(rows, pa.Table):
        return rows
    ensure_raw_tables(conn)
    full = conn.execute(f"select * from {RAW_SCHEMA}.{table} limit 0").to_arrow_table().schema
    names = (
        list(rows) if isinstance(rows, dict) else [n for n in full.names if rows and n in rows[0]]
    )
    if isinstance(rows, list) and not rows:
        names = full.names
    schema = pa.schema([full.field(name) for name in names])
    if isinstance(rows, dict):
        return pa.Table.from_pydict(rows, schema=schema)
    return pa.Table.from_pylist(rows, schema=schema)


def replace_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    time_column: str,
    start: datetime,
    end: datetime,
    rows: Rows,
    keep: str | None = None,
) -> int:
    """Delete ``[start, end)`` of ``table`` and insert ``rows`` in one transaction.

    ``keep`` is a SQL predicate on the table's columns for rows of the window that must
    survive (and that ``rows`` must then not repeat).

    Re-running it with the same rows leaves the table identical: that is what makes
    re-materialising a partition (or a range of them) idempotent.
    """
    if table not in RAW_TABLES:
        raise ValueError(f"unknown raw table {table!r}")
    rows = arrow_table(conn, table, rows)
    conn.execute("begin transaction")
    try:
        spare = f" and not ({keep})" if keep else ""
        conn.execute(
            f"delete from {RAW_SCHEMA}.{table} "
            f"where {time_column} >= ? and {time_column} < ?{spare}",
            [start, end],
        )
        conn.register("_incoming_rows", rows)
        conn.execute(f"insert into {RAW_SCHEMA}.{table} by name select * from _incoming_rows")
        conn.unregister("_incoming_rows")
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return len(rows)
