"""The demo's folder and settings (nostr_assets/demo/folder.py).

Protects: the settings the demo hands the pipeline parse as the pipeline parses them and keep
everything it writes inside the demo's folder (warehouse, Dagster instance, dashboard), crawl
only the demo's relays (an empty bootstrap list, loopback allowed), fetch every kind, publish
nothing whatever the shell says, start the partitions at the first demo hour, and read the
demo's own GeoIP databases when it has them (the shell's otherwise); a new demo removes what
the previous one left, and nothing else in the folder.
"""

from __future__ import annotations

from pathlib import Path

from nostr_assets.demo.folder import DemoPaths, demo_environment
from nostr_assets.settings import find_project_root, load_settings, read_relays_file

URLS = ["ws://127.0.0.1:41001", "ws://127.0.0.1:41002"]
FIRST_HOUR = 1_795_179_600  # 2026-11-20 13:00 UTC


def test_the_settings_point_at_the_demo_only(tmp_path):
    paths = DemoPaths(tmp_path)
    paths.reset()
    shell = {
        "NOSTR_KINDS": "1",
        "NOSTR_MONITOR_PUBLISH_RELAYS": "wss://relay.example.com",
        "NOSTR_MONITOR_SECRET_KEY": "01" * 32,
        "NOSTR_DUCKDB_PATH": "data/nostr.duckdb",
    }
    environ = {**shell, **demo_environment(paths, URLS, FIRST_HOUR)}
    settings = load_settings(environ)
    assert settings.duckdb_path == paths.warehouse
    assert settings.duckdb_path.is_relative_to(tmp_path)
    assert settings.dashboard_path.is_relative_to(tmp_path)
    assert Path(environ["DAGSTER_HOME"]).is_relative_to(tmp_path)
    assert settings.relays == tuple(URLS)
    assert settings.relays_file == paths.relays_file
    assert read_relays_file(paths.relays_file) == ()
    assert settings.allow_private_addresses is True
    assert settings.kinds is None
    assert not settings.monitor_publish_relays and not settings.monitor_secret_key_set
    assert settings.partitions_start == "2026-11-20-13:00"
    assert settings.duckdb_path != find_project_root() / "data" / "nostr.duckdb"
    assert settings.geoip_city_db is None and settings.geoip_asn_db is None


def test_the_settings_point_at_the_demo_geoip_databases(tmp_path):
    paths = DemoPaths(tmp_path)
    paths.reset()
    shell = {"NOSTR_GEOIP_CITY_DB": "data/geoip/GeoLite2-City.mmdb"}
    settings = load_settings({**shell, **demo_environment(paths, URLS, FIRST_HOUR, geoip=True)})
    assert settings.geoip_city_db == paths.city_db
    assert settings.geoip_asn_db == paths.asn_db
    assert paths.city_db.is_relative_to(tmp_path) and paths.asn_db.is_relative_to(tmp_path)
    without = load_settings({**shell, **demo_environment(paths, URLS, FIRST_HOUR)})
    assert without.geoip_city_db == find_project_root() / "data/geoip/GeoLite2-City.mmdb"


def test_reset_removes_the_previous_demo_and_nothing_else(tmp_path):
    paths = DemoPaths(tmp_path)
    kept = tmp_path / "notes.txt"
    kept.write_text("mine")
    for leftover in (paths.warehouse, paths.dashboard, paths.summary, paths.log):
        leftover.write_text("old")
    (paths.dagster_home / "storage").mkdir(parents=True)
    (paths.relays / "hub").mkdir(parents=True)
    paths.geoip.mkdir()
    paths.city_db.write_text("old")
    paths.reset()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "relays.txt"]
    assert kept.read_text() == "mine"
