"""Protects dbt on a DuckLake whose data path is S3 (moto on 127.0.0.1, a SQLite catalog): the
profile gives dbt's session the S3 secret the Python side signs with, so dbt reads the raw
tables' Parquet files from the bucket (not from AWS, which it cannot reach here) and builds a
mart that holds what it holds on the file. The fixture's marts are a few rows, which DuckLake
keeps in its catalog (data inlining) rather than in a file. Skips, with the reason, where moto
cannot start."""

from __future__ import annotations

import duckdb
import pytest
from dbt_marts import dbt_command
from raw_fixture import copy_raw_tables, write_raw_fixture

from nostr_assets.lib.warehouse.lake import S3Storage, connect_lake

# The server fixtures: s3_server, s3_bucket.
pytest_plugins = ["lake_servers"]
MART = "fct_events_hourly"  # reads raw.nostr_events, whose rows are Parquet in the bucket


@pytest.mark.slow
def test_dbt_writes_the_marts_into_the_bucket(tmp_path, s3_server, s3_bucket):
    file = tmp_path / "nostr.duckdb"
    write_raw_fixture(file)
    catalog, data = f"sqlite:{tmp_path / 'catalog.sqlite'}", f"s3://{s3_bucket}/lake/"
    storage = S3Storage(s3_server.endpoint, "us-east-1", s3_server.key_id, s3_server.secret)
    conn = connect_lake(catalog, data, s3=storage)
    try:
        copy_raw_tables(conn, file)
    finally:
        conn.close()
    raw_files = [key for key in s3_server.keys(s3_bucket) if key.endswith(".parquet")]
    assert any("/raw/nostr_events/" in key for key in raw_files), raw_files

    lake_env = {
        "NOSTR_WAREHOUSE": "ducklake",
        "NOSTR_DUCKLAKE_CATALOG": catalog,
        "NOSTR_DUCKLAKE_DATA_PATH": data,
        "NOSTR_DUCKLAKE_S3_ENDPOINT": s3_server.endpoint,
        "NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID": s3_server.key_id,
        "NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY": s3_server.secret,
    }
    dbt_command("run", lake_env, tmp_path / "lake_target", "--select", f"+{MART}")
    file_env = {"NOSTR_WAREHOUSE": "duckdb", "NOSTR_DUCKDB_PATH": str(file)}
    dbt_command("run", file_env, tmp_path / "file_target", "--select", f"+{MART}")

    assert not list(tmp_path.rglob("*.parquet"))  # nothing on local disk
    conn = connect_lake(catalog, data, read_only=True, s3=storage)
    try:
        on_lake = conn.execute(f"select * from main.{MART} order by all").fetchall()
    finally:
        conn.close()
    with duckdb.connect(str(file), read_only=True) as on_file:
        assert on_lake == on_file.execute(f"select * from main.{MART} order by all").fetchall()
    assert on_lake
