"""The warehouse on DuckLake: an in-memory DuckDB that attaches the lake as ``lake`` and uses it,
so ``raw.*`` and every other unqualified name mean the lake's tables, as they mean the file's.

DuckLake keeps its catalog in SQLite (processes on one machine) or Postgres (many writers,
remote readers) and its rows as Parquet files in a folder or on S3-compatible storage. DuckDB
is only the query engine here: the in-memory database holds nothing but temporary tables.
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
    if catalog.startswith("sqlite:") and not read_only:
        use_wal(Path(catalog.removeprefix("sqlite:")))
    for attempt in range(1, ATTACH_ATTEMPTS + 1):
        conn = duckdb.connect(":memory:", config=dict(config or {}))
        try:
            load_extensions(conn, lake_extensions(catalog, data_path))
            if data_path.startswith("s3://"):
                conn.execute(s3_secret_sql(data_path, s3 or S3Storage()))
            conn.execute(attach_sql(catalog, data_path, read_only))
            conn.execute(f"use {LAKE_ALIAS}")
            return conn
        except duckdb.Error as error:
            conn.close()
            if attempt == ATTACH_ATTEMPTS or not _lost_creation_race(error):
                raise
            time.sleep(0.1 * attempt)
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


# Writers starting together on a new lake all try to create its catalog tables; those that
# lose see "already exists" (Postgres: a duplicate key in its own catalog) or a locked SQLite
# file. Attaching again then finds the lake made.
ATTACH_ATTEMPTS = 5


def _lost_creation_race(error: duckdb.Error) -> bool:
    text = str(error).lower()
    return "initialize ducklake" in text and any(
        word in text for word in ("already exists", "duplicate key", "database is locked")
    )


def use_wal(catalog_file: Path) -> None:
    """Put a SQLite catalog in write-ahead-log mode (once: the mode is kept in the file).

    In SQLite's default mode a reader blocks a writer's commit and a writer blocks readers, so
    a sensor reading the lake could hold up a landing and the other way round; with the log,
    readers never wait and are never waited for. A new catalog is created here, empty, and
    DuckLake fills it on its first attach. A catalog another process holds keeps its mode
    (switching needs it alone); the next connection tries again."""
    catalog_file.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(catalog_file, timeout=5)
    try:
        if db.execute("pragma journal_mode").fetchone()[0] != "wal":
            db.execute("pragma journal_mode = wal")
    except sqlite3.OperationalError:
        pass  # busy: another process has it open in a transaction
    finally:
        db.close()


def _current_database(conn: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """The type of the connection's current database (``duckdb``, ``ducklake``) and its path
    (a lake's is its catalog, ``sqlite:...`` or ``postgres:...``)."""
    row = conn.execute(
        "select type, path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return (str(row[0]), str(row[1] or "")) if row else ("", "")


def _sqlite_catalog(conn: duckdb.DuckDBPyConnection) -> Path | None:
    """The SQLite file of the lake that is the connection's current database, if it is one."""
    kind, path = _current_database(conn)
    if kind != "ducklake" or not path.startswith("sqlite:"):
        return None
    return Path(path.removeprefix("sqlite:"))


@contextmanager
def writer_turn(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Hold the lake's writer lock for a transaction when its catalog is a SQLite file.

    SQLite cannot merge two writers' transactions: when one commits, every other transaction
    that has read the catalog since it began fails to commit ("database is locked") and all
    its work is thrown away. Writers on one machine therefore take turns per transaction, with
    an advisory lock on ``<catalog>.writers.lock``; what they do outside transactions (crawling,
    verifying, preparing rows) still runs side by side. A Postgres catalog merges concurrent
    commits itself and needs no lock; the DuckDB file has a single writer anyway."""
    catalog = _sqlite_catalog(conn)
    if catalog is None:
        yield
        return
    with open(f"{catalog}.writers.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_storage(conn: duckdb.DuckDBPyConnection, data_path: str) -> None:
    """Raise duckdb's error when an ``s3://`` data path cannot be listed (no such bucket, a
    refused key, no server at the endpoint). DuckLake itself touches the files only when it
    writes rows, so without this a wrong bucket would surface as the first landing's failure.
    One LIST of a prefix that names no file: cheap however large the lake."""
    if data_path.startswith("s3://"):
        conn.execute(f"select count(*) from glob({_quote(data_path + '.nostr-analytics-probe*')})")


def is_lake(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's current database is a DuckLake (no keys, no ``on conflict``)."""
    return _current_database(conn)[0] == "ducklake"
