"""The warehouse on DuckLake: an in-memory DuckDB that attaches the lake as ``lake`` and uses it,
so ``raw.*`` and every other unqualified name mean the lake's tables, as they mean the file's.

DuckLake keeps its catalog in SQLite (processes on one machine) or Postgres (many writers,
remote readers) and its rows as Parquet files in a folder or on S3-compatible storage. DuckDB
is only the query engine here: the in-memory database holds nothing but temporary tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from nostr_assets.lib.warehouse.extensions import load_extensions

LAKE_ALIAS = "lake"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lake_extensions(catalog: str, data_path: str) -> list[str]:
    """The extensions a lake with this catalog and data path needs, in load order."""
    names = ["ducklake"]
    names.append("postgres_scanner" if catalog.startswith("postgres:") else "sqlite_scanner")
    if data_path.startswith("s3://"):
        names.append("httpfs")
    return names


def attach_sql(catalog: str, data_path: str, read_only: bool = False) -> str:
    """``attach 'ducklake:<catalog>' as lake (data_path ...)``. The data path is stored in the
    catalog when the lake is created; later attaches must name the same one."""
    options = [f"data_path {_quote(data_path)}"]
    if read_only:
        options.append("read_only")
    return (
        f"attach if not exists {_quote('ducklake:' + catalog)} as {LAKE_ALIAS} "
        f"({', '.join(options)})"
    )


def connect_lake(
    catalog: str,
    data_path: str,
    read_only: bool = False,
    config: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection whose current database is the lake; the extensions come from their wheels."""
    conn = duckdb.connect(":memory:", config=dict(config or {}))
    try:
        load_extensions(conn, lake_extensions(catalog, data_path))
        conn.execute(attach_sql(catalog, data_path, read_only))
        conn.execute(f"use {LAKE_ALIAS}")
    except BaseException:
        conn.close()
        raise
    return conn


def is_lake(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's current database is a DuckLake (no keys, no ``on conflict``)."""
    row = conn.execute(
        "select type from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return row is not None and row[0] == "ducklake"
