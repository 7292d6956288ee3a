"""The warehouse on DuckLake: an in-memory DuckDB that attaches the lake as ``lake`` and uses it,
so ``raw.*`` and every other unqualified name mean the lake's tables, as they mean the file's.

DuckLake keeps its catalog in SQLite (processes on one machine) or Postgres (many writers,
remote readers) and its rows as Parquet files in a folder or on S3-compatible storage. DuckDB
is only the query engine here: the in-memory database holds nothing but temporary tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from nostr_assets.lib.warehouse.extensions import load_extensions

LAKE_ALIAS = "lake"
# The temporary secret that signs the lake's S3 requests, scoped to its bucket.
S3_SECRET = "nostr_lake_s3"


@dataclass(frozen=True)
class S3Storage:
    """How DuckDB reaches an ``s3://`` data path; the defaults are AWS S3 without credentials
    (anonymous requests, for a public bucket)."""

    endpoint: str | None = None  # http(s)://host[:port] of an S3-compatible server
    region: str = "us-east-1"
    key_id: str | None = None
    secret: str | None = field(default=None, repr=False)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lake_extensions(catalog: str, data_path: str) -> list[str]:
    """The extensions a lake with this catalog and data path needs, in load order."""
    names = ["ducklake"]
    names.append("postgres_scanner" if catalog.startswith("postgres:") else "sqlite_scanner")
    if data_path.startswith("s3://"):
        names.append("httpfs")
    return names


def s3_bucket(data_path: str) -> str:
    """``bucket`` of ``s3://bucket/prefix/``."""
    return data_path.removeprefix("s3://").split("/", 1)[0]


def s3_secret_sql(data_path: str, storage: S3Storage) -> str:
    """``create temporary secret`` for the data path's bucket. A custom endpoint is addressed
    by path (``http://host/bucket/key``: MinIO, moto and most S3-compatible servers need it,
    having no DNS name per bucket), and its scheme says whether to speak TLS."""
    options = [
        "type s3",
        f"region {_quote(storage.region)}",
        f"scope {_quote('s3://' + s3_bucket(data_path))}",
    ]
    if storage.key_id:
        options += [f"key_id {_quote(storage.key_id)}", f"secret {_quote(storage.secret or '')}"]
    if storage.endpoint:
        scheme, _, host = storage.endpoint.partition("://")
        use_ssl = "true" if scheme == "https" else "false"
        options += [f"endpoint {_quote(host)}", "url_style 'path'", f"use_ssl {use_ssl}"]
    return f"create or replace temporary secret {S3_SECRET} ({', '.join(options)})"


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
    s3: S3Storage | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection whose current database is the lake; the extensions come from their wheels,
    and an ``s3://`` data path gets a secret from ``s3`` before the lake is attached."""
    conn = duckdb.connect(":memory:", config=dict(config or {}))
    try:
        load_extensions(conn, lake_extensions(catalog, data_path))
        if data_path.startswith("s3://"):
            conn.execute(s3_secret_sql(data_path, s3 or S3Storage()))
        conn.execute(attach_sql(catalog, data_path, read_only))
        conn.execute(f"use {LAKE_ALIAS}")
    except BaseException:
        conn.close()
        raise
    return conn


def check_storage(conn: duckdb.DuckDBPyConnection, data_path: str) -> None:
    """Raise duckdb's error when an ``s3://`` data path cannot be listed (no such bucket, a
    refused key, no server at the endpoint). DuckLake itself touches the files only when it
    writes rows, so without this a wrong bucket would surface as the first landing's failure.
    One LIST of a prefix that names no file: cheap however large the lake."""
    if data_path.startswith("s3://"):
        conn.execute(f"select count(*) from glob({_quote(data_path + '.nostr-analytics-probe*')})")


def is_lake(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's current database is a DuckLake (no keys, no ``on conflict``)."""
    row = conn.execute(
        "select type from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return row is not None and row[0] == "ducklake"
