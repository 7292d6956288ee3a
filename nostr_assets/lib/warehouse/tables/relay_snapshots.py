"""raw.relay_snapshots: what a relay looked like in an hour, by our probe or a NIP-66 monitor.

One builder serves both sources. Every column takes the attribute of the same name from the
observation (``RelayProbe`` or ``MonitorReport``), and the NIP-11 columns take the parsed
document's fields; a column an observation does not carry stays null, which means unknown.
So a probe metric is a field of ``RelayProbe`` and a line of the DDL below, nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nostr_assets.lib.network.probe import RelayProbe
from nostr_assets.lib.protocol.nip66 import MonitorReport
from nostr_assets.lib.warehouse.raw_table import RawTable

TABLE = RawTable(
    name="relay_snapshots",
    grain="One row per relay and snapshot hour.",
    time_column="snapshot_hour",
    columns="""
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
        -- What our probe saw the relay do; null: not tested (not reached, or a NIP-66 row).
        reads_without_auth   boolean,            -- answered a plain REQ without AUTH
        requires_auth_for_read boolean,          -- answered it CLOSED "auth-required:"
        answers_count        boolean,            -- NIP-45 COUNT answered
        answers_negentropy   boolean,            -- NIP-77 NEG-OPEN answered with NEG-MSG
        primary key (snapshot_hour, relay_url)
    """,
)

# Columns filled from the parsed NIP-11 document (``Nip11Info``), by the field they come from.
NIP11_COLUMNS = {
    "relay_name": "name",
    "relay_description": "description",
    "relay_pubkey": "pubkey",
    "relay_contact": "contact",
    "software": "software",
    "software_version": "version",
    "supported_nips": "supported_nips",
    "max_limit": "max_limit",
    "max_message_length": "max_message_length",
    "max_subscriptions": "max_subscriptions",
    "payment_required": "payment_required",
    "auth_required": "auth_required",
    "restricted_writes": "restricted_writes",
}
# Error texts come from strangers' servers: kept long enough to read, never unbounded.
MAX_ERROR_MESSAGE = 500


def snapshot_row(hour: datetime, seen: RelayProbe | MonitorReport) -> dict[str, Any]:
    """The row of one relay in ``hour``, from our probe or from a monitor's report."""
    info = seen.nip11_info
    row: dict[str, Any] = {}
    for column in TABLE.column_names:
        if column in NIP11_COLUMNS:
            row[column] = getattr(info, NIP11_COLUMNS[column]) if info is not None else None
        else:
            row[column] = getattr(seen, column, None)
    row["snapshot_hour"] = hour
    row["observed_at"] = datetime.fromtimestamp(seen.observed_at, UTC)
    if row["error_message"]:
        row["error_message"] = row["error_message"][:MAX_ERROR_MESSAGE]
    return row
