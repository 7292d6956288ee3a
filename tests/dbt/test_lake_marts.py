"""Protects the marts on DuckLake (NOSTR_WAREHOUSE=ducklake), issue 13's "done when": the same
raw data (tests/raw_fixture.py, then a later hour) landed into a DuckDB file and into a lake
gives the same rows in every model, column by column, after `dbt build` on both (every model
and every dbt test) and again after an incremental `dbt run` over 12:00-14:00, which deletes
and appends the hourly marts' window. The models compared are the manifest's, so a new model
cannot escape the comparison, and the comparison is shown to catch a changed or missing row.
(dbt's tests over a windowed run on the lake run in tests/integration/test_lake_pipeline.py.)

Also: the profile's `lake` output builds into the lake the settings name (relative paths from
NOSTR_PROJECT_ROOT): its tables and views in the SQLite catalog, rows as Parquet in the data
folder, nothing in a DuckDB file; its attach follows the settings' rules for any environment;
and the dbt resource shows a Postgres catalog's password nowhere.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dbt.config.profile import read_profile
from dbt.config.renderer import ProfileRenderer
from dbt_common.context import set_invocation_context
from dbt_marts import PROJECT_DIR, dbt_command
from raw_fixture import R1, R2, copy_raw_tables, write_raw_fixture

from nostr_assets.defs.resources import build_resources
from nostr_assets.lib.warehouse.extensions import load_extensions
from nostr_assets.lib.warehouse.lake import connect_lake, lake_extensions
from nostr_assets.lib.warehouse.tables import RAW_TABLES
from nostr_assets.settings import Settings, load_settings

# The later hour, 13:00, and a re-crawl of 12:00 that lost its zap (#23): the incremental run
# over 12:00-14:00 deletes the window's rows on both warehouses and appends them again.
WINDOW = {"window_start": "2024-01-01 12:00:00", "window_end": "2024-01-01 14:00:00"}
ZAP_23 = f"{23:064x}"
LATER_HOUR = f"""
delete from raw.event_relay_sightings where event_id = '{ZAP_23}';
delete from raw.nostr_events where event_id = '{ZAP_23}';
-- hour 10's events again at 13:00 under new ids (their tags still name the originals)
insert into raw.nostr_events
select
    'a' || substr(event_id, 2), pubkey, created_at + 10800, created_hour + interval 3 hour,
    kind, tags, content, sig, raw_json, first_seen_at + interval 3 hour, relay_count
from raw.nostr_events where created_hour = timestamptz '2024-01-01 10:00:00+00';
insert into raw.event_relay_sightings
select
    'a' || substr(event_id, 2), relay_url, created_hour + interval 3 hour,
    first_seen_at + interval 3 hour
from raw.event_relay_sightings where created_hour = timestamptz '2024-01-01 10:00:00+00';
-- 13:00 snapshots: every relay's reachability the opposite of 12:00's
insert into raw.relay_snapshots by name
select * replace (
    snapshot_hour + interval 1 hour as snapshot_hour,
    observed_at + interval 1 hour as observed_at,
    not is_reachable as is_reachable
)
from raw.relay_snapshots where snapshot_hour = timestamptz '2024-01-01 12:00:00+00';
insert into raw.relay_geolocations by name
select * replace (snapshot_hour + interval 1 hour as snapshot_hour)
from raw.relay_geolocations where snapshot_hour = timestamptz '2024-01-01 12:00:00+00';
insert into raw.relay_fetch_stats by name
select
    hour as created_hour, relay as relay_url, hour + interval 70 minute as fetched_at,
    7 as events, 1 as duplicates, 0 as invalid_ids, 0 as invalid_signatures,
    0 as invalid_other, 0 as bad_frames, 0 as stray_events, 2 as pages,
    false as possibly_truncated, true as eose_received, null as closed_prefix,
    4096 as bytes_received, 12.5 as time_to_open_ms, 30.25 as time_to_first_event_ms,
    case when relay = '{R2}' then 'timeout' end as error_class
from
    unnest([timestamptz '2024-01-01 12:00:00+00', timestamptz '2024-01-01 13:00:00+00'])
        as hours (hour),
    unnest(['{R1}', '{R2}']) as relays (relay);
"""


@dataclass
class Warehouses:
    file: Path  # the DuckDB file dbt built
    settings: Settings  # the lake's, as load_settings reads the environment dbt was given
    root: Path
    models: set[str]  # every model of the manifest
    after_full: dict[str, list[str]]  # model -> what differs, after the full build
    after_incremental: dict[str, list[str]]


def comparing_connection(file: Path, settings: Settings) -> duckdb.DuckDBPyConnection:
    """One DuckDB that attaches the file (under its own name, which its views use) and the lake
    (as `lake`, which the lake's views use), both read-only."""
    conn = duckdb.connect()
    catalog, data_path = settings.ducklake_catalog, settings.ducklake_data_path
    load_extensions(conn, lake_extensions(catalog, data_path))
    conn.execute("set TimeZone = 'UTC'")
    conn.execute(f"attach '{file}' (read_only)")
    conn.execute(f"attach 'ducklake:{catalog}' as lake (data_path '{data_path}', read_only)")
    return conn


def relations(conn: duckdb.DuckDBPyConnection, database: str) -> set[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = ? and table_schema = 'main'",
        [database],
    ).fetchall()
    return {name for (name,) in rows}


def compare_models(
    conn: duckdb.DuckDBPyConnection, file_db: str, models: set[str]
) -> dict[str, list[str]]:
    """Every model on the file against the lake: columns and their types in order, row counts,
    the rows each side has that the other lacks (EXCEPT ALL both ways), and all rows in order.
    Returns model -> the differences found; a model equal on both sides is absent."""
    shapes = {
        (database, table): columns
        for database, table, columns in conn.execute(
            "select table_catalog, table_name, "
            "list((column_name, data_type) order by ordinal_position) "
            "from information_schema.columns where table_schema = 'main' group by all"
        ).fetchall()
    }
    found: dict[str, list[str]] = {}
    for model in sorted(models):
        file_shape, lake_shape = shapes.get((file_db, model)), shapes.get(("lake", model))
        if file_shape != lake_shape or not file_shape:
            found[model] = [f"columns {file_shape} on the file, {lake_shape} on the lake"]
            continue
        file, lake = f"{file_db}.main.{model}", f"lake.main.{model}"
        problems = []
        file_rows, lake_rows = (
            conn.execute(f"from {t} order by all").fetchall() for t in (file, lake)
        )
        if len(file_rows) != len(lake_rows):
            problems.append(f"{len(file_rows)} rows on the file, {len(lake_rows)} on the lake")
        for a, b, side in ((file, lake, "file"), (lake, file, "lake")):
            extra = conn.execute(f"from {a} except all from {b} limit 3").fetchall()
            if extra:
                problems.append(f"only on the {side}: {extra}")
        if file_rows != lake_rows:
            problems.append("the rows in order differ")
        if problems:
            found[model] = problems
    return found


def land_fixture(file: Path, settings: Settings) -> None:
    """The raw fixture into the DuckDB file, and the same rows into the lake."""
    write_raw_fixture(file)
    conn = connect_lake(settings.ducklake_catalog, settings.ducklake_data_path)
    try:
        copy_raw_tables(conn, file)
    finally:
        conn.close()


def land_later_hour(file: Path, settings: Settings) -> None:
    file_conn = duckdb.connect(str(file))
    lake_conn = connect_lake(settings.ducklake_catalog, settings.ducklake_data_path)
    for conn in (file_conn, lake_conn):
        try:
            conn.execute("set TimeZone = 'UTC'")
            conn.execute(LATER_HOUR)
        finally:
            conn.close()


def manifest_models(target: Path) -> set[str]:
    manifest = json.loads((target / "manifest.json").read_text())
    return {
        node["alias"] for node in manifest["nodes"].values() if node["resource_type"] == "model"
    }


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> Warehouses:
    root = tmp_path_factory.mktemp("lake_marts")
    # Relative, as a user may write them: the profile and the settings resolve them both
    # against NOSTR_PROJECT_ROOT. The file's variable names a file that must never appear.
    lake_env = {
        "NOSTR_PROJECT_ROOT": str(root),
        "NOSTR_WAREHOUSE": "ducklake",
        "NOSTR_DUCKLAKE_CATALOG": "sqlite:lake/catalog.sqlite",
        "NOSTR_DUCKLAKE_DATA_PATH": "lake/files",
        "NOSTR_DUCKDB_PATH": "unused.duckdb",
    }
    settings = load_settings(lake_env, only=list(lake_env))
    (root / "lake").mkdir()
    file = root / "nostr.duckdb"
    file_env = {"NOSTR_WAREHOUSE": "duckdb", "NOSTR_DUCKDB_PATH": str(file)}
    land_fixture(file, settings)

    # Each side has a target folder of its own: its manifest, and nothing the other wrote.
    def build_both(command: str, *args: str) -> None:
        dbt_command(command, file_env, root / "target_file", *args)
        dbt_command(command, lake_env, root / "target_lake", *args)

    def compare() -> dict[str, list[str]]:
        with comparing_connection(file, settings) as conn:
            return compare_models(conn, file.stem, models)

    build_both("build")
    models = manifest_models(root / "target_lake")
    after_full = compare()
    land_later_hour(file, settings)
    build_both("run", "--vars", json.dumps(WINDOW))
    return Warehouses(file, settings, root, models, after_full, compare())


def test_the_lake_output_builds_into_the_lake(warehouses):
    settings = warehouses.settings
    catalog = Path(settings.ducklake_catalog.removeprefix("sqlite:"))
    assert catalog == warehouses.root / "lake" / "catalog.sqlite"
    with sqlite3.connect(catalog) as sqlite:
        tables = {
            name
            for (name,) in sqlite.execute(
                "select table_name from ducklake_table where end_snapshot is null"
            )
        }
        views = {
            name
            for (name,) in sqlite.execute(
                "select view_name from ducklake_view where end_snapshot is null"
            )
        }
    staging = {m for m in warehouses.models if m.startswith("stg_")}
    assert views == staging
    assert tables == (warehouses.models - staging) | set(RAW_TABLES)
    # Small tables are inlined into the catalog; the larger ones are Parquet in the data path.
    data = Path(settings.ducklake_data_path)
    assert data == warehouses.root / "lake" / "files"
    written = {path.relative_to(data).parts[:2] for path in data.rglob("*.parquet")}
    assert ("raw", "nostr_events") in written
    assert {folder for schema, folder in written if schema == "main"}, written
    # Nothing went to a DuckDB file: neither the one NOSTR_DUCKDB_PATH names nor another.
    assert not settings.duckdb_path.exists()
    assert [p.name for p in warehouses.root.rglob("*.duckdb")] == ["nostr.duckdb"]


def test_every_model_equals_the_file_after_a_full_build(warehouses):
    assert warehouses.after_full == {}


def test_every_model_equals_the_file_after_an_incremental_run(warehouses):
    assert warehouses.after_incremental == {}
    with comparing_connection(warehouses.file, warehouses.settings) as conn:
        # The incremental path ran: 12:00 lost its zap, 13:00 came in, 10:00 is untouched.
        hourly = conn.execute(
            "select hour(event_hour), sum(events) filter (where kind = 9735), sum(events) "
            "from lake.main.fct_events_hourly "
            "where event_hour::date = date '2024-01-01' group by all order by all"
        ).fetchall()
        assert hourly == [(10, 1, 17), (11, 1, 4), (12, None, 1), (13, 1, 17)]
        # Every model holds rows, so no comparison above was of two empty tables.
        for model in sorted(warehouses.models):
            assert conn.execute(f"select count(*) from lake.main.{model}").fetchall()[0][0], model


def test_the_comparison_covers_every_model_of_the_manifest(warehouses):
    assert len(warehouses.models) >= 24
    with comparing_connection(warehouses.file, warehouses.settings) as conn:
        assert relations(conn, "lake") == warehouses.models
        assert relations(conn, warehouses.file.stem) == warehouses.models


def test_the_comparison_catches_a_changed_row(warehouses):
    settings = warehouses.settings
    # Three models changed on the lake inside a transaction, which is then undone, and one not.
    models = {"fct_zaps_daily", "fct_relay_uptime", "fct_software_adoption", "dim_relays"}
    conn = connect_lake(settings.ducklake_catalog, settings.ducklake_data_path)
    try:
        conn.execute(f"attach '{warehouses.file}' (read_only)")
        conn.execute("begin")
        conn.execute("update lake.main.fct_zaps_daily set zaps = zaps + 1")
        conn.execute("delete from lake.main.fct_relay_uptime where relay_url = ?", [R1])
        conn.execute("drop table lake.main.fct_software_adoption")
        found = compare_models(conn, warehouses.file.stem, models)
        conn.execute("rollback")
        assert compare_models(conn, warehouses.file.stem, models) == {}
    finally:
        conn.close()
    assert set(found) == models - {"dim_relays"}
    assert any("only on the file" in problem for problem in found["fct_zaps_daily"])
    assert "3 rows on the file, 2 on the lake" in found["fct_relay_uptime"][0]
    assert "None on the lake" in found["fct_software_adoption"][0]


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"NOSTR_DUCKLAKE_CATALOG": "", "NOSTR_DUCKLAKE_DATA_PATH": ""},
        {"NOSTR_DUCKLAKE_CATALOG": "sqlite:lake/c.sqlite", "NOSTR_DUCKLAKE_DATA_PATH": "lake/f"},
        {"NOSTR_DUCKLAKE_CATALOG": "sqlite:/srv/c.sqlite", "NOSTR_DUCKLAKE_DATA_PATH": "/srv/f/"},
        {"NOSTR_PROJECT_ROOT": "/srv/nostr", "NOSTR_DUCKLAKE_DATA_PATH": "s3://bucket/lake"},
        {"NOSTR_DUCKLAKE_CATALOG": "postgres:dbname=lake host=db.example"},
    ],
)
def test_the_lake_output_attaches_the_lake_of_the_settings(environ, monkeypatch):
    monkeypatch.setattr(Path, "is_dir", lambda self: True)  # /srv/nostr need not exist here
    environ = {"NOSTR_WAREHOUSE": "ducklake", **environ}
    set_invocation_context(environ)
    try:
        profile = read_profile(str(PROJECT_DIR))["nostr_analytics"]
        renderer = ProfileRenderer({})
        target = renderer.render_value(profile["target"])
        lake = renderer.render_data(profile["outputs"][target])
    finally:
        set_invocation_context(dict(os.environ))
    settings = load_settings(environ, only=[*environ, "NOSTR_PROJECT_ROOT"])
    assert target == "lake"
    (attach,) = lake["attach"]
    catalog = attach["path"].removeprefix("ducklake:")
    if catalog.startswith("sqlite:"):
        # dbt runs in dbt_project/: a relative path there starts at the project root.
        catalog = f"sqlite:{(PROJECT_DIR / catalog.removeprefix('sqlite:')).resolve()}"
    assert (attach["alias"], catalog) == ("lake", settings.ducklake_catalog)
    data_path = attach["options"]["data_path"]
    if "://" not in data_path:
        data_path = str((PROJECT_DIR / data_path).resolve())
    # DuckLake puts a separator after the data path when it has none (DuckLake 1.5.5).
    assert data_path.rstrip("/") + "/" == settings.ducklake_data_path
    wanted = lake_extensions(settings.ducklake_catalog, settings.ducklake_data_path)
    assert set(lake["extensions"]) == set(wanted)


def test_the_dbt_resource_shows_no_catalog_password(monkeypatch):
    catalog = "postgres:dbname=lake host=db.example password=hunter2"
    monkeypatch.setenv("NOSTR_WAREHOUSE", "ducklake")
    monkeypatch.setenv("NOSTR_DUCKLAKE_CATALOG", catalog)
    declared = build_resources(load_settings())["dbt"]
    # What the UI shows of the resource: the variable's name, not the password.
    shown = repr(declared) + str(declared.__dict__)
    assert "hunter2" not in shown and "NOSTR_DUCKLAKE_CATALOG" in shown
    with dg.build_resources({"dbt": declared}) as resources:
        assert "hunter2" not in repr(resources.dbt)
        # In the run the variable is read: dbt's process gets the catalog itself.
        assert resources.dbt.dbt_environment()["NOSTR_DUCKLAKE_CATALOG"] == catalog
