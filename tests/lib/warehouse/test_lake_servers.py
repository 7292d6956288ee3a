"""Protects the DuckLake warehouse on real servers: a Postgres catalog (Debian's postgresql,
started on a private port and folder) and S3 storage (moto on 127.0.0.1), alone and together.
On each, the raw tables are created, a window landed twice leaves the rows a DuckDB file holds,
the rows are Parquet files in the folder or the bucket, and another connection or process
reads them; the resource attaches from its settings; a catalog's password and the S3 secret key
never appear in what the resource shows or says, and a missing bucket is named at start. The
S3 secret DuckDB signs with, the settings' refusals and the password redaction are checked
without servers. Server tests skip, with the reason, where their server cannot start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
import pytest
from relays import BASE_HOUR, SECRET_KEYS

from nostr_assets.defs.resources import build_resources
from nostr_assets.defs.resources.warehouse import WarehouseResource, WarehouseUnusable
from nostr_assets.lib.protocol.event import sign_event
from nostr_assets.lib.warehouse.event_landing import land_window
from nostr_assets.lib.warehouse.lake import S3Storage, connect_lake, s3_secret_sql
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.lib.warehouse.tables.event_relay_sightings import sighting_rows
from nostr_assets.lib.warehouse.tables.nostr_events import event_rows
from nostr_assets.settings import SettingsError, catalog_passwords, hide_password, load_settings

if TYPE_CHECKING:
    from lake_servers import PostgresServer, S3Server

# The servers' fixtures: postgres_server, s3_server, s3_bucket.
pytest_plugins = ["lake_servers"]
slow = pytest.mark.slow
HOUR = datetime.fromtimestamp(BASE_HOUR, UTC)
END = HOUR + timedelta(hours=1)
# More rows per table than DuckLake inlines into its catalog (10): these become Parquet files.
EVENTS = [
    sign_event(SECRET_KEYS[i % 4], BASE_HOUR + 60 * i, 1, [], f"n{i}", bytes(32)) for i in range(40)
]
RELAYS = ("wss://a.example", "wss://b.example")
TABLES = ("nostr_events", "event_relay_sightings")


def land_twice(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Land the same two relays' crawl of one window twice; the rows after each landing must
    be the same, and are returned."""
    ensure_raw_tables(conn)
    seen = [
        {e.id: BASE_HOUR + 100.0 + i for i, e in enumerate(EVENTS[:30])},
        {e.id: BASE_HOUR + 50.0 + i for i, e in enumerate(EVENTS[10:])},
    ]
    created = {e.id: e.created_at for e in EVENTS}
    landed = []
    for _ in range(2):
        for relay, times in zip(RELAYS, seen, strict=True):
            events = event_rows([e for e in EVENTS if e.id in times], times)
            pairs = [(event_id, relay, at) for event_id, at in times.items()]
            land_window(conn, HOUR, END, events, sighting_rows(pairs, created))
        landed.append(read_rows(conn))
    assert landed[0] == landed[1], "a window landed again changed the rows"
    return landed[1]


def read_rows(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {t: conn.execute(f"select * from raw.{t} order by all").fetchall() for t in TABLES}


@pytest.fixture(scope="module")
def file_rows() -> dict[str, list[tuple]]:
    """What the DuckDB file holds after the same landings: the lake must hold the same."""
    with duckdb.connect(":memory:") as conn:
        rows = land_twice(conn)
    assert len(rows["nostr_events"]) == 40 and len(rows["event_relay_sightings"]) == 60
    return rows


def storage(s3: S3Server) -> S3Storage:
    return S3Storage(endpoint=s3.endpoint, region=s3.region, key_id=s3.key_id, secret=s3.secret)


# Without servers: the secret DuckDB signs with, the settings, the redaction.


def test_the_s3_secret_is_scoped_to_the_bucket_and_follows_the_endpoint():
    custom = S3Storage(endpoint="http://127.0.0.1:9000", key_id="id", secret="it's")
    assert s3_secret_sql("s3://b/p/", custom) == (
        "create or replace temporary secret nostr_lake_s3 (type s3, region 'us-east-1', "
        "scope 's3://b', key_id 'id', secret 'it''s', endpoint '127.0.0.1:9000', "
        "url_style 'path', use_ssl false)"
    )
    tls = s3_secret_sql("s3://b/", S3Storage(endpoint="https://minio.example"))
    assert "endpoint 'minio.example', url_style 'path', use_ssl true" in tls
    aws = s3_secret_sql("s3://b/p/", S3Storage(region="eu-west-1"))
    assert aws.endswith("(type s3, region 'eu-west-1', scope 's3://b')")  # AWS, anonymous
    assert "it's" not in repr(custom)


def test_s3_settings_are_parsed_and_refused_in_one_line(tmp_path):
    (tmp_path / "dbt_project").mkdir()
    (tmp_path / "dbt_project" / "dbt_project.yml").write_text("name: x\n")
    environ = {
        "NOSTR_PROJECT_ROOT": str(tmp_path),
        "NOSTR_DUCKLAKE_S3_ENDPOINT": " HTTP://127.0.0.1:9000/ ",
        "NOSTR_DUCKLAKE_S3_REGION": "eu-central-1",
        "NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY": "very-secret",
    }
    settings = load_settings(environ)
    assert settings.ducklake_s3_endpoint == "http://127.0.0.1:9000"
    assert (settings.ducklake_s3_region, settings.ducklake_s3_access_key_id) == (
        "eu-central-1",
        "AKIAEXAMPLE",
    )
    assert settings.ducklake_s3_secret_set is True
    assert "very-secret" not in repr(settings)
    defaults = load_settings({"NOSTR_PROJECT_ROOT": str(tmp_path)})
    assert defaults.ducklake_s3_endpoint is None and defaults.ducklake_s3_region == "us-east-1"
    bad = {
        "NOSTR_DUCKLAKE_S3_ENDPOINT": "127.0.0.1:9000",
        "NOSTR_DUCKLAKE_S3_REGION": "eu west",
        "NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY": "very-secret",
    }
    with pytest.raises(SettingsError) as refused:
        load_settings({"NOSTR_PROJECT_ROOT": str(tmp_path), **bad})
    assert refused.value.problems == [
        "NOSTR_DUCKLAKE_S3_ENDPOINT='127.0.0.1:9000': expected http://host:port or "
        "https://host[:port], no path",
        "NOSTR_DUCKLAKE_S3_REGION='eu west': expected letters, digits, - and _ only, e.g. "
        "eu-central-1 or auto",
        "NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID='': expected the key id of "
        "NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY (both or neither)",
    ]
    assert "very-secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("catalog", "password"),
    [
        ("postgres:dbname=lake host=db password=pw1 user=x", "pw1"),
        ("postgres:dbname=lake PASSWORD = 'it\\'s a pw' host=db", "it's a pw"),
        ("postgres:postgresql://lake:pw%40x@db:5432/lake", "pw%40x"),
        ("postgres:postgresql://db/lake?password=pw2&sslmode=require", "pw2"),
    ],
)
def test_a_catalog_password_is_found_and_hidden(catalog, password):
    assert password in catalog_passwords(catalog)
    # As DuckDB's errors quote it: inside double quotes, after other text.
    error = f'Unable to connect to Postgres at "{catalog.removeprefix("postgres:")}": failed'
    hidden = hide_password(error, *catalog_passwords(catalog))
    assert password not in hidden and "<hidden>" in hidden
    assert hidden.startswith('Unable to connect to Postgres at "') and hidden.endswith('": failed')
    assert catalog_passwords("postgres:dbname=lake host=db") == []


def test_a_refused_catalog_never_repeats_its_password(tmp_path):
    with pytest.raises(SettingsError) as refused:
        load_settings(
            {"NOSTR_DUCKLAKE_CATALOG": "postgresql://lake:hunter2@db/lake"},
            only=["NOSTR_DUCKLAKE_CATALOG"],
        )
    (line,) = refused.value.problems
    assert line.startswith("NOSTR_DUCKLAKE_CATALOG='postgresql://lake:<hidden>@db/lake': ")
    with pytest.raises(SettingsError) as refused:
        WarehouseResource(database="x.duckdb", ducklake_catalog="mysql:password=hunter2")
    assert "hunter2" not in str(refused.value) and "<hidden>" in str(refused.value)
    settings = load_settings(
        {"NOSTR_DUCKLAKE_CATALOG": "postgres:dbname=lake password=hunter2"},
        only=["NOSTR_DUCKLAKE_CATALOG"],
    )
    assert "hunter2" not in repr(settings)


# On real servers.


@slow
def test_postgres_catalog_with_a_local_folder(postgres_server, tmp_path, file_rows):
    catalog = postgres_server.catalog(postgres_server.create_database())
    with connect_lake(catalog, f"{tmp_path / 'files'}/") as lake:
        assert land_twice(lake) == file_rows
    assert list((tmp_path / "files").rglob("*.parquet"))
    # Another connection (a reader elsewhere would do the same) sees the same rows.
    with connect_lake(catalog, f"{tmp_path / 'files'}/", read_only=True) as reader:
        assert read_rows(reader) == file_rows


@slow
def test_sqlite_catalog_with_s3_data(s3_server, s3_bucket, tmp_path, file_rows):
    catalog, data = f"sqlite:{tmp_path / 'catalog.sqlite'}", f"s3://{s3_bucket}/nostr/"
    with connect_lake(catalog, data, s3=storage(s3_server)) as lake:
        assert land_twice(lake) == file_rows
    keys = s3_server.keys(s3_bucket)
    assert keys and all(key.startswith("nostr/raw/") for key in keys), keys
    assert {key.split("/")[2] for key in keys if key.endswith(".parquet")} >= set(TABLES)
    assert not list(tmp_path.rglob("*.parquet")), "no Parquet file may land on the local disk"
    with connect_lake(catalog, data, read_only=True, s3=storage(s3_server)) as reader:
        assert read_rows(reader) == file_rows


READER = """
import json, os, sys
from nostr_assets.lib.warehouse.lake import S3Storage, connect_lake
s3 = S3Storage(os.environ["T_ENDPOINT"], "us-east-1", os.environ["T_KEY"], os.environ["T_SECRET"])
with connect_lake(os.environ["T_CATALOG"], os.environ["T_DATA"], read_only=True, s3=s3) as c:
    rows = {t: c.execute(f"select * from raw.{t} order by all").fetchall() for t in sys.argv[1:]}
print(json.dumps({t: [[str(v) for v in row] for row in r] for t, r in rows.items()}))
"""


@slow
def test_postgres_catalog_with_s3_data_read_by_another_process(
    postgres_server, s3_server, s3_bucket, file_rows
):
    catalog, data = postgres_server.catalog(postgres_server.create_database()), f"s3://{s3_bucket}/"
    with connect_lake(catalog, data, s3=storage(s3_server)) as lake:
        assert land_twice(lake) == file_rows
    assert any(key.endswith(".parquet") for key in s3_server.keys(s3_bucket, "raw/nostr_events/"))
    environ = {
        **os.environ,
        "T_ENDPOINT": s3_server.endpoint,
        "T_KEY": s3_server.key_id,
        "T_SECRET": s3_server.secret,
        "T_CATALOG": catalog,
        "T_DATA": data,
    }
    done = subprocess.run(
        [sys.executable, "-c", READER, *TABLES],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = {t: [[str(v) for v in row] for row in file_rows[t]] for t in TABLES}
    assert json.loads(done.stdout) == expected


def lake_environ(postgres: PostgresServer, s3: S3Server, database: str, bucket: str) -> dict:
    return {
        "NOSTR_WAREHOUSE": "ducklake",
        "NOSTR_DUCKLAKE_CATALOG": postgres.catalog(database),
        "NOSTR_DUCKLAKE_DATA_PATH": f"s3://{bucket}/lake",
        "NOSTR_DUCKLAKE_S3_ENDPOINT": s3.endpoint,
        "NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID": s3.key_id,
        "NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY": s3.secret,
    }


@slow
def test_the_resource_attaches_postgres_and_s3_from_the_settings_showing_no_secret(
    postgres_server, s3_server, s3_bucket, monkeypatch
):
    environ = lake_environ(postgres_server, s3_server, postgres_server.create_database(), s3_bucket)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    declared = build_resources(load_settings())["duckdb"]
    assert isinstance(declared, WarehouseResource)
    # What the UI shows of the resource: the variables' names, not the password or the key.
    shown = repr(declared) + str(declared.__dict__)
    assert postgres_server.password not in shown and s3_server.secret not in shown
    assert "NOSTR_DUCKLAKE_CATALOG" in shown and s3_server.endpoint in shown
    with dg.build_resources({"duckdb": declared}) as resources:
        resource = resources.duckdb
        assert postgres_server.password not in repr(resource)
        assert s3_server.secret not in repr(resource)
        with resource.get_connection() as conn:
            assert conn.execute("select current_database()").fetchone() == ("lake",)
            conn.execute("create table raw.probe as select range as n from range(100)")
        with resource.get_connection(read_only=True) as conn:
            assert conn.execute("select sum(n) from raw.probe").fetchone() == (4950,)
    assert any(key.startswith("lake/raw/probe/") for key in s3_server.keys(s3_bucket))


@slow
def test_a_wrong_password_is_refused_without_being_repeated(postgres_server, tmp_path):
    database = postgres_server.create_database()
    wrong = "wrong-" + postgres_server.password
    for catalog in (
        postgres_server.catalog(database, password=wrong),
        f"postgres:postgresql://lake:{wrong}@127.0.0.1:{postgres_server.port}/{database}",
    ):
        resource = WarehouseResource(
            database=str(tmp_path / "unused.duckdb"),
            warehouse="ducklake",
            ducklake_catalog=catalog,
            ducklake_data_path=f"{tmp_path / 'files'}/",
        )
        with pytest.raises(WarehouseUnusable) as refused, resource.get_connection():
            pass
        message = str(refused.value)
        assert wrong not in message and postgres_server.password not in message
        assert "password authentication failed" in message and "<hidden>" in message
        assert message.startswith("DuckLake catalog 'postgres:") and "\n" not in message
        assert wrong not in repr(resource)


@slow
def test_the_password_can_come_from_pgpassword(postgres_server, tmp_path, monkeypatch):
    # The set-up the README advises: no password in the catalog string at all.
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    catalog = postgres_server.catalog(postgres_server.create_database(), password="")
    resource = WarehouseResource(
        database=str(tmp_path / "unused.duckdb"),
        warehouse="ducklake",
        ducklake_catalog=catalog,
        ducklake_data_path=f"{tmp_path / 'files'}/",
    )
    with resource.get_connection() as conn:
        assert conn.execute("select count(*) from raw.nostr_events").fetchone() == (0,)


@slow
def test_a_missing_bucket_is_named_at_start(s3_server, tmp_path):
    resource = WarehouseResource(
        database=str(tmp_path / "unused.duckdb"),
        warehouse="ducklake",
        ducklake_catalog=f"sqlite:{tmp_path / 'catalog.sqlite'}",
        ducklake_data_path="s3://no-such-bucket/lake/",
        ducklake_s3_endpoint=s3_server.endpoint,
        ducklake_s3_access_key_id=s3_server.key_id,
        ducklake_s3_secret_access_key=s3_server.secret,
    )
    with pytest.raises(WarehouseUnusable) as refused, resource.get_connection():
        pass
    message = str(refused.value)
    assert message.startswith("DuckLake data path 's3://no-such-bucket/lake/' cannot be listed: ")
    assert "NoSuchBucket" in message and "\n" not in message
    assert message.endswith("(NOSTR_DUCKLAKE_DATA_PATH, NOSTR_DUCKLAKE_S3_*)")
    assert s3_server.secret not in message
