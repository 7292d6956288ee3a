"""The start-up schema check: every raw table exists and matches this version's DDL.

A warehouse made by an older version gets the columns added since (nullable, or with a
default); a difference that cannot be bridged without losing data (a column this version does
not know, a narrower type, another primary key) stops everything with one line per difference,
before anything is changed.

On a DuckLake the tables are the same but without primary keys, which DuckLake does not
support; the landing code keeps each key unique there (``landing.check_key``).
"""

from __future__ import annotations

import duckdb

from nostr_assets.lib.warehouse.lake import is_lake
from nostr_assets.lib.warehouse.raw_table import (
    RAW_SCHEMA,
    SchemaMismatch,
    in_transaction,
    plan_upgrade,
    scalar,
)
from nostr_assets.lib.warehouse.tables import RAW_TABLES


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Create missing raw tables and upgrade old ones; return the statements that changed an
    existing table (empty when it was up to date). Raises ``SchemaMismatch`` and changes
    nothing when a table cannot be upgraded without losing data.

    On a lake, writers starting at once may race to create the tables: the one that loses
    looks again and finds them made."""
    return in_transaction(conn, lambda: _ensure_raw_tables(conn))


def _ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    existing = {
        name
        for (name,) in conn.execute(
            "select table_name from duckdb_tables() "
            "where database_name = current_database() and schema_name = $1",
            [RAW_SCHEMA],
        ).fetchall()
    }
    upgrades: list[str] = []
    problems: list[str] = []
    for table in RAW_TABLES.values():
        if table.name in existing:
            statements, found = plan_upgrade(conn, table)
            upgrades += statements
            problems += found
    if problems:
        database = scalar(conn, "select current_database()")
        raise SchemaMismatch(database, problems)
    lake = is_lake(conn)
    conn.execute(f"create schema if not exists {RAW_SCHEMA}")
    for table in RAW_TABLES.values():
        if table.name not in existing:
            conn.execute(table.create_sql(lake))
    for statement in upgrades:
        conn.execute(statement)
    return upgrades
