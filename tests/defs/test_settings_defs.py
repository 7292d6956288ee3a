"""Protects the Dagster side of the one configuration path (issue 7): resources built from the
settings and refusing bad values in one line, a code location that will not load from a bad
environment, a warehouse that says within seconds what is wrong with its file, sensors that
reach the warehouse through the resource, dbt pointed at the same file as the assets, relays
retired when they leave the list, and guarded relays named with the setting that allows them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_dbt import DbtCliResource
from dagster_env import graph_resources
from dbt.config.profile import read_profile
from dbt.config.renderer import ProfileRenderer
from dbt_common.context import set_invocation_context
from relays import BASE_HOUR

from nostr_assets.defs import automation
from nostr_assets.defs.dbt.project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_project
from nostr_assets.defs.events.assets import nostr_events
from nostr_assets.defs.relays.catalog import relay_catalog
from nostr_assets.defs.relays.relay_list import (
    contactable_relays,
    guarded_relays_skipped,
    retired_relays,
)
from nostr_assets.defs.relays.snapshots import relay_snapshots
from nostr_assets.defs.resources import (
    NostrCrawlerResource,
    NostrDbtResource,
    RelaySourcesResource,
    WarehouseResource,
    WarehouseUnusable,
    build_resources,
)
from nostr_assets.lib.network import address_guard
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
ASSETS = [relay_catalog, relay_snapshots, nostr_events]
EVENT_TABLES = dg.AssetSelection.assets(["raw", "nostr_events"]).required_multi_asset_neighbors()
FIRST_HOUR = datetime.fromtimestamp(BASE_HOUR, UTC).strftime("%Y-%m-%d-%H:%M")


def latest_closed_hour() -> str:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return hour.strftime("%Y-%m-%d-%H:%M")


def table(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def materialize(resources, selection, partition_key=None, instance=None):
    return dg.materialize(
        ASSETS,
        selection=selection,
        partition_key=partition_key,
        resources=resources,
        instance=instance,
    )


def metadata_of(result, asset: str) -> dict:
    materialization = next(
        m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == asset
    )
    return {k: v.value for k, v in materialization.materialization.metadata.items()}


def warnings_of(instance, result) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING
    ]


# --------------------------------------------------------------------------------------------
# Resources refuse what the settings refuse, in the same one line


@pytest.mark.parametrize(
    ("field", "value", "line"),
    [
        ("kinds", "abc", "NOSTR_KINDS='abc': expected comma-separated integers 0..65535"),
        ("concurrency", 0, "NOSTR_CONCURRENCY=0: expected an integer >= 1"),
        ("connect_timeout_s", float("nan"), "NOSTR_CONNECT_TIMEOUT=nan: expected a finite"),
        ("idle_timeout_s", float("inf"), "NOSTR_IDLE_TIMEOUT=inf: expected a finite"),
        ("total_timeout_s", -1, "NOSTR_TOTAL_TIMEOUT=-1: expected a finite"),
        ("allow_private_addresses", "maybe", "NOSTR_ALLOW_PRIVATE_ADDRESSES='maybe': expected"),
    ],
)
def test_crawler_resource_refuses_a_bad_value_in_one_line(field, value, line):
    with pytest.raises(SettingsError) as caught:
        NostrCrawlerResource(**{field: value})
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(line)


def test_crawler_resource_uses_the_settings_truth_words():
    assert NostrCrawlerResource(allow_private_addresses="on").allow_private_addresses is True
    assert NostrCrawlerResource(allow_private_addresses="off").allow_private_addresses is False
    with pytest.raises(SettingsError):  # pydantic alone would take "t" for true
        NostrCrawlerResource(allow_private_addresses="t")


def test_relay_sources_name_malformed_urls_instead_of_dropping_them(tmp_path):
    with pytest.raises(SettingsError) as caught:
        RelaySourcesResource(extra_relays="wss://ok.example,ws//host,htp://host")
    assert "'ws//host' (bad_scheme)" in str(caught.value)
    assert "'htp://host' (bad_scheme)" in str(caught.value)
    listed = tmp_path / "relays.txt"
    listed.write_text("wss://ok.example\n")
    sources = RelaySourcesResource(relays_file=str(listed), extra_relays="wss://two.example")
    # A bad line written after load fails the next read, naming it.
    listed.write_text("wss://ok.example\nhtp://host\n")
    with pytest.raises(SettingsError, match=r"line 2 'htp://host' \(bad_scheme\)"):
        sources.bootstrap()


def test_resources_are_built_from_the_settings(tmp_path):
    settings = load_settings(
        {
            "NOSTR_PROJECT_ROOT": str(ROOT),
            "NOSTR_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            "NOSTR_KINDS": "7,1",
            "NOSTR_CONCURRENCY": "3",
            "NOSTR_IDLE_TIMEOUT": "4.5",
            "NOSTR_ALLOW_PRIVATE_ADDRESSES": "on",
            "NOSTR_RELAYS": "wss://Relay.Example.com/",
            "NOSTR_MIN_RELAY_CAP": "50",
            "NOSTR_DUCKDB_MEMORY_MB": "300",
            "NOSTR_NIP11_MAX_KB": "20",
            "NOSTR_CATALOG_URLS_PER_EVENT": "7",
            "NOSTR_CATALOG_NEW_URLS_PER_RUN": "11",
        }
    )
    resources = build_resources(settings)
    crawler = resources["crawler"]
    assert (crawler.kinds, crawler.concurrency, crawler.idle_timeout_s) == ("1,7", 3, 4.5)
    assert crawler.allow_private_addresses is True
    assert crawler.client_config().min_relay_cap == 50
    assert crawler.client_config().nip11_max_bytes == 20 * 1024
    sources = resources["relay_sources"]
    assert (sources.urls_per_event, sources.new_urls_per_run) == (7, 11)
    with resources["duckdb"].get_connection() as conn:
        # 300 MB, as DuckDB reports it: 300,000,000 bytes in MiB.
        limit = conn.execute("select current_setting('memory_limit')").fetchone()[0]
    assert limit == "286.1 MiB"
    assert resources["relay_sources"].bootstrap()["wss://relay.example.com"] == "env"
    assert resources["duckdb"].database == str(tmp_path / "w.duckdb")
    assert resources["dbt"].duckdb_path == str(tmp_path / "w.duckdb")


@pytest.mark.slow
def test_a_bad_environment_stops_the_code_location_from_loading():
    env = {**os.environ, "NOSTR_KINDS": "abc", "NOSTR_CONCURRENCY": "0"}
    run = subprocess.run(
        # What Dagster does when it loads the code location: call the definitions function.
        [sys.executable, "-c", "import nostr_assets.definitions as d; d.defs()"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert lines[-2:] == [
        "nostr_assets.settings.SettingsError: NOSTR_KINDS='abc': expected comma-separated "
        "integers 0..65535 (empty: every kind)",
        "NOSTR_CONCURRENCY='0': expected an integer >= 1",
    ]


# --------------------------------------------------------------------------------------------
# The warehouse says what is wrong with its file, in seconds


def refused(database: Path, read_only: bool = False) -> str:
    started = time.monotonic()
    with (
        pytest.raises(WarehouseUnusable) as caught,
        WarehouseResource(database=str(database)).get_connection(read_only=read_only),
    ):
        pass
    assert time.monotonic() - started < 3  # dagster-duckdb alone retried for about 106 s
    return caught.value.description


def test_warehouse_that_is_a_folder(tmp_path):
    assert "is a folder, not a file" in refused(tmp_path)


def test_warehouse_in_a_missing_folder(tmp_path):
    message = refused(tmp_path / "missing" / "nostr.duckdb")
    assert f"its folder {tmp_path / 'missing'} does not exist" in message


def test_warehouse_in_a_folder_that_is_not_writable(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert f"its folder {folder} is not writable" in refused(folder / "nostr.duckdb")
    finally:
        folder.chmod(0o755)


def test_warehouse_file_that_is_read_only(tmp_path):
    database = tmp_path / "nostr.duckdb"
    duckdb.connect(str(database)).close()
    database.chmod(0o444)
    assert "is a read-only file" in refused(database)
    # Reading it is fine: sensors open the warehouse read-only.
    with WarehouseResource(database=str(database)).get_connection(read_only=True) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


@pytest.mark.parametrize(
    ("content", "what"),
    [(b"", "an empty file"), (b"SQLite format 3\x00" + bytes(100), "corrupt or another kind")],
)
def test_warehouse_file_that_is_not_duckdb(tmp_path, content, what):
    database = tmp_path / "nostr.duckdb"
    database.write_bytes(content)
    message = refused(database)
    assert "is not a DuckDB database" in message and what in message
    assert "NOSTR_DUCKDB_PATH" in message
    assert "is not a DuckDB database" in refused(database, read_only=True)


def test_warehouse_opens_a_good_file_and_closes_it_when_the_body_raises(tmp_path):
    warehouse = WarehouseResource(
        database=str(tmp_path / "nostr.duckdb"),
        connection_config={"checkpoint_threshold": "256MB"},
    )
    with pytest.raises(RuntimeError), warehouse.get_connection() as conn:
        conn.execute("create table t as select 1 as x")
        raise RuntimeError("step failed")
    # A connection left open would make DuckDB refuse one with another configuration.
    with warehouse.get_connection(read_only=True) as conn:
        assert conn.execute("select x from t").fetchall() == [(1,)]


# --------------------------------------------------------------------------------------------
# Sensors reach the warehouse through the resource


def add_catalog_row(database: Path, url: str, source: str, guarded: bool = False) -> None:
    with duckdb.connect(str(database)) as conn:
        ensure_raw_tables(conn)
        conn.execute(
            "insert into raw.relay_catalog values ($1, $2, now(), now(), $3, null)",
            [url, source, guarded],
        )


def test_sensors_take_the_warehouse_resource():
    from nostr_assets.definitions import defs as load_definitions

    defs = load_definitions()

    assert defs.resolve_sensor_def("late_events_sensor").required_resource_keys == {"duckdb"}
    # Discovery also needs the catalog's bound on URLs per event, to see "new" as it does.
    assert defs.resolve_sensor_def("relay_discovery_sensor").required_resource_keys == {
        "duckdb",
        "relay_sources",
    }
    assert not hasattr(automation, "database_path_value")


def test_sensors_read_the_resource_not_the_environment(tmp_path, monkeypatch):
    database = tmp_path / "nostr.duckdb"
    monkeypatch.setenv("NOSTR_DUCKDB_PATH", str(tmp_path / "elsewhere.duckdb"))
    resources = {
        "duckdb": WarehouseResource(database=str(database)),
        "relay_sources": RelaySourcesResource(),
    }
    skipped = automation.late_events_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(skipped, dg.SkipReason) and "catalog is empty" in skipped.skip_message
    discovery = automation.relay_discovery_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(discovery, dg.SkipReason) and "no warehouse yet" in discovery.skip_message

    add_catalog_row(database, "wss://relay.example.com", "bootstrap")
    request = automation.late_events_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == automation.late_partition_key(datetime.now(UTC))
    assert not (tmp_path / "elsewhere.duckdb").exists()


def test_a_busy_warehouse_makes_the_sensor_skip_a_tick(tmp_path):
    database = tmp_path / "nostr.duckdb"
    add_catalog_row(database, "wss://relay.example.com", "bootstrap")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            "conn = duckdb.connect(sys.argv[1])\n"
            "print('holding', flush=True)\n"
            "time.sleep(60)\n",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        resources = {
            "duckdb": WarehouseResource(database=str(database)),
            "relay_sources": RelaySourcesResource(),
        }
        started = time.monotonic()
        result = automation.relay_discovery_sensor(dg.build_sensor_context(resources=resources))
        assert time.monotonic() - started < 3
        assert isinstance(result, dg.SkipReason)
        assert "warehouse not readable now" in result.skip_message
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------------------------
# dbt opens the file the Python assets write


def rendered_profile_path(environ: dict[str, str]) -> Path:
    set_invocation_context(environ)
    try:
        profile = read_profile(str(DBT_PROJECT_DIR))["nostr_analytics"]["outputs"]["dev"]
        path = ProfileRenderer({}).render_data(profile)["path"]
    finally:
        set_invocation_context(dict(os.environ))
    # dbt runs in dbt_project/ (dagster-dbt changes into it too).
    return (DBT_PROJECT_DIR / path).resolve()


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"NOSTR_DUCKDB_PATH": ""},
        {"NOSTR_DUCKDB_PATH": "data/other.duckdb"},
        {"NOSTR_DUCKDB_PATH": "/srv/nostr/warehouse.duckdb"},
        {"NOSTR_PROJECT_ROOT": "/srv/nostr"},
        {"NOSTR_PROJECT_ROOT": "/srv/nostr", "NOSTR_DUCKDB_PATH": "w/x.duckdb"},
    ],
)
def test_dbt_profile_and_settings_name_the_same_file(environ, monkeypatch):
    monkeypatch.setattr(Path, "is_dir", lambda self: True)  # /srv/nostr need not exist here
    expected = load_settings(environ, only=["NOSTR_PROJECT_ROOT", "NOSTR_DUCKDB_PATH"])
    assert rendered_profile_path(environ) == expected.duckdb_path


def test_dbt_resource_sets_the_path_for_its_call_only(tmp_path, monkeypatch):
    seen = {}

    def fake_cli(self, args, **kwargs):
        seen["path"] = os.environ.get("NOSTR_DUCKDB_PATH")
        return "invocation"

    monkeypatch.setattr(DbtCliResource, "cli", fake_cli)
    monkeypatch.setenv("NOSTR_DUCKDB_PATH", "/somewhere/else.duckdb")
    dbt = NostrDbtResource(
        project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE, duckdb_path=str(tmp_path / "w.db")
    )
    assert dbt.cli(["build"]) == "invocation"
    assert seen["path"] == str((tmp_path / "w.db").resolve())
    assert os.environ["NOSTR_DUCKDB_PATH"] == "/somewhere/else.duckdb"


@pytest.mark.slow
def test_dbt_really_opens_the_resource_warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("NOSTR_DUCKDB_PATH", str(tmp_path / "wrong.duckdb"))
    right = tmp_path / "right.duckdb"
    dbt = NostrDbtResource(
        project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE, duckdb_path=str(right)
    )
    invocation = dbt.cli(["debug"], raise_on_error=False)
    invocation.wait()
    assert invocation.is_successful()
    # `dbt debug` opens the warehouse to test the connection: the file appears.
    assert right.exists() and not (tmp_path / "wrong.duckdb").exists()


# --------------------------------------------------------------------------------------------
# Retired relays and guarded relays


def test_contactable_relays_apply_the_guard_and_the_list():
    conn = duckdb.connect()
    ensure_raw_tables(conn)
    rows = [
        ("wss://listed.example", "bootstrap", False),
        ("wss://dropped.example", "bootstrap", False),
        ("wss://env-dropped.example", "env", False),
        ("wss://found.example", "nip65", False),
        ("wss://hint.example", "hint", True),
        ("ws://10.0.0.1", "env", True),
    ]
    for url, source, guarded in rows:
        conn.execute(
            "insert into raw.relay_catalog values ($1, $2, now(), now(), $3, null)",
            [url, source, guarded],
        )
    listed = ["wss://listed.example", "ws://10.0.0.1"]
    assert contactable_relays(conn, False, listed) == [
        "wss://found.example",
        "wss://listed.example",
    ]
    assert contactable_relays(conn, True, listed) == [
        "ws://10.0.0.1",
        "wss://found.example",
        "wss://hint.example",
        "wss://listed.example",
    ]
    assert guarded_relays_skipped(conn, False, listed) == ["ws://10.0.0.1", "wss://hint.example"]
    assert guarded_relays_skipped(conn, True, listed) == []
    assert retired_relays(conn, listed) == ["wss://dropped.example", "wss://env-dropped.example"]
    assert len(contactable_relays(conn, True, None)) == len(rows)  # nothing retired


def test_a_relay_that_leaves_nostr_relays_is_no_longer_contacted(
    tmp_path, relay_a, relay_b, relay_all
):
    database = tmp_path / "nostr.duckdb"
    no_file = tmp_path / "relays.txt"
    no_file.write_text("# none\n")

    def resources(*urls: str) -> dict:
        environ = {
            "NOSTR_PROJECT_ROOT": str(ROOT),
            "NOSTR_DUCKDB_PATH": str(database),
            "NOSTR_RELAYS_FILE": str(no_file),
            "NOSTR_RELAYS": ",".join(urls),
            "NOSTR_ALLOW_PRIVATE_ADDRESSES": "on",
            "NOSTR_CONNECT_TIMEOUT": "3",
            "NOSTR_IDLE_TIMEOUT": "5",
            "NOSTR_TOTAL_TIMEOUT": "60",
        }
        return build_resources(load_settings(environ, only=set(environ)))

    first = materialize(resources(relay_a.url, relay_b.url), "raw/relay_catalog")
    assert metadata_of(first, "relay_catalog")["retired_relays"] == 0
    # A relay found in stored events is the network's, not the list's: never retired by it.
    add_catalog_row(database, relay_all.url, "nip65", guarded=True)

    second = materialize(resources(relay_a.url), "raw/relay_catalog")
    assert metadata_of(second, "relay_catalog")["retired_relays"] == 1
    materialize(resources(relay_a.url), EVENT_TABLES, FIRST_HOUR)
    materialize(resources(relay_a.url), "raw/relay_snapshots", latest_closed_hour())

    fetched = table(database, "select distinct relay_url from raw.relay_fetch_stats order by 1")
    probed = table(database, "select relay_url from raw.relay_snapshots order by 1")
    assert fetched == probed == sorted([(relay_a.url,), (relay_all.url,)])
    # History stays: the retired relay keeps its catalog row.
    kept = f"select source from raw.relay_catalog where relay_url = '{relay_b.url}'"
    assert table(database, kept) == [("env",)]

    third = materialize(resources(relay_a.url, relay_b.url), "raw/relay_catalog")
    assert metadata_of(third, "relay_catalog")["retired_relays"] == 0


def test_guarded_relays_skipped_are_named_with_the_setting_that_allows_them(
    tmp_path, relay_a, relay_b, monkeypatch
):
    database = tmp_path / "nostr.duckdb"
    base = graph_resources(database, [relay_a.url, relay_b.url])
    materialize(base, "raw/relay_catalog")  # both on 127.0.0.1: both marked guarded
    # Unmark relay A and let the connection guard treat 127.0.0.1 as public: A is fetched and
    # B is skipped by its catalog mark alone, as a private relay beside public ones would be.
    with duckdb.connect(str(database)) as conn:
        conn.execute(
            "update raw.relay_catalog set is_guarded = false where relay_url = $1", [relay_a.url]
        )
    monkeypatch.setattr(address_guard, "classify_address", lambda ip: None)
    closed = {
        **base,
        "crawler": NostrCrawlerResource(
            allow_private_addresses=False,
            connect_timeout_s=3.0,
            idle_timeout_s=5.0,
            total_timeout_s=60.0,
        ),
    }
    with dg.instance_for_test() as instance:
        events = materialize(closed, EVENT_TABLES, FIRST_HOUR, instance=instance)
        snapshots = materialize(closed, "raw/relay_snapshots", latest_closed_hour(), instance)
        for result in (events, snapshots):
            warning = next(w for w in warnings_of(instance, result) if relay_b.url in w)
            assert "set NOSTR_ALLOW_PRIVATE_ADDRESSES=true to contact them" in warning
            assert relay_a.url not in warning
    assert metadata_of(events, "nostr_events")["guarded_relays_skipped"] == 1
    assert metadata_of(snapshots, "relay_snapshots")["guarded_relays_skipped"] == 1
    fetched = table(database, "select distinct relay_url from raw.relay_fetch_stats")
    assert fetched == [(relay_a.url,)]
    assert table(database, "select relay_url from raw.relay_snapshots") == [(relay_a.url,)]


def test_the_monitor_key_reaches_its_resource_as_an_environment_variable(monkeypatch):
    """The UI shows a resource's field values: the key is bound as an EnvVar, so it shows
    the variable's name, and the run reads the value from its own environment."""
    secret = "cd" * 32
    monkeypatch.setenv("NOSTR_MONITOR_SECRET_KEY", secret)
    monkeypatch.setenv("NOSTR_MONITOR_PUBLISH_RELAYS", "wss://relay.example.com")
    monitor = build_resources(load_settings())["monitor"]
    assert secret not in repr(monitor) and secret not in str(monitor.__dict__)
    assert monitor.publish_relays == "wss://relay.example.com"
    with dg.build_resources({"monitor": monitor}) as built:
        assert built.monitor.enabled() and built.monitor.key().secret.hex() == secret
    monkeypatch.delenv("NOSTR_MONITOR_SECRET_KEY")
    assert not build_resources(load_settings())["monitor"].enabled()
