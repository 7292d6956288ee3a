"""Landing rows in a raw table: typed by the table's own DDL, a window replaced atomically."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import duckdb
import pyarrow as pa

from nostr_assets.lib.warehouse.lake import is_lake
from nostr_assets.lib.warehouse.raw_table import RAW_SCHEMA, in_transaction
from nostr_assets.lib.warehouse.tables import RAW_TABLES

Rows: TypeAlias = pa.Table | list[dict] | dict[str, list]


def arrow_table(conn: duckdb.DuckDBPyConnection, table: str, rows: Rows) -> pa.Table:
    """``rows`` (dicts, or columns) as Arrow typed by the raw table's own DDL.

    Asking DuckDB for the schema keeps the table's DDL the only place a column type is written;
    the columns ``rows`` leaves out (computed while landing) are simply not in the result.
    """
    if isinstance(rows, pa.Table):
        return rows
    full = conn.execute(f"select * from {RAW_SCHEMA}.{table} limit 0").to_arrow_table().schema
    names: list[str] = (
        list(rows) if isinstance(rows, dict) else [n for n in full.names if rows and n in rows[0]]
    )
    if isinstance(rows, list) and not rows:
        names = full.names
    schema = pa.schema([full.field(name) for name in names])
    if isinstance(rows, dict):
        return pa.Table.from_pydict(rows, schema=schema)
    return pa.Table.from_pylist(rows, schema=schema)


def check_key(
    conn: duckdb.DuckDBPyConnection, table: str, where: str = "true", params: list | None = None
) -> None:
    """Raise ``duckdb.ConstraintException`` when rows of ``table`` (those ``where`` selects)
    repeat its primary key: on a DuckLake, which has no keys, this is the check DuckDB makes
    on the file. Called inside the landing transaction, so a duplicate rolls it back."""
    key = ", ".join(RAW_TABLES[table].primary_key)
    row = conn.execute(
        f"select {key}, count(*) from {RAW_SCHEMA}.{table} where {where} "
        "group by all having count(*) > 1 limit 1",
        params or [],
    ).fetchone()
    if row is not None:
        raise duckdb.ConstraintException(
            f"Duplicate key ({key}) = {tuple(row[:-1])} in {RAW_SCHEMA}.{table}: {row[-1]} rows "
            "(the lake has no primary keys, so landing checks them)"
        )


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
    if time_column != RAW_TABLES[table].time_column:
        raise ValueError(f"raw.{table} is partitioned by {RAW_TABLES[table].time_column}")
    rows = arrow_table(conn, table, rows)
    spare = f" and not ({keep})" if keep else ""
    lake = is_lake(conn)
    conn.register("_incoming_rows", rows)
    try:

        def replace() -> None:
            conn.execute(
                f"delete from {RAW_SCHEMA}.{table} "
                f"where {time_column} >= ? and {time_column} < ?{spare}",
                [start, end],
            )
            conn.execute(f"insert into {RAW_SCHEMA}.{table} by name select * from _incoming_rows")
            if lake:
                check_key(conn, table, f"{time_column} >= ? and {time_column} < ?", [start, end])

        in_transaction(conn, replace)
    finally:
        conn.unregister("_incoming_rows")
    return len(rows)
