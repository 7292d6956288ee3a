"""Protects the offline extensions: each one the lake needs installs from its PyPI wheel into
an empty extension directory, with every download route closed, and loads; a missing wheel
or one built for another DuckDB is refused naming the package and version to install.
"""

from __future__ import annotations

import duckdb
import pytest

from nostr_assets.lib.warehouse import extensions
from nostr_assets.lib.warehouse.extensions import (
    WHEELS,
    ExtensionMissing,
    extension_file,
    load_extensions,
)


def offline_connection(folder) -> duckdb.DuckDBPyConnection:
    # An empty extension directory, and a repository nobody serves: a download would fail.
    return duckdb.connect(
        config={
            "extension_directory": str(folder),
            "custom_extension_repository": "http://127.0.0.1:9/none",
            "autoinstall_known_extensions": False,
        }
    )


def test_every_extension_installs_and_loads_from_its_wheel(tmp_path):
    conn = offline_connection(tmp_path / "extensions")
    load_extensions(conn, WHEELS)
    loaded = dict(
        conn.execute(
            "select extension_name, loaded from duckdb_extensions() "
            "where extension_name in (select unnest($1::varchar[]))",
            [list(WHEELS)],
        ).fetchall()
    )
    assert loaded == dict.fromkeys(WHEELS, True)
    installed = {p.name for p in (tmp_path / "extensions").rglob("*.duckdb_extension")}
    assert installed == {f"{name}.duckdb_extension" for name in WHEELS}


def test_the_file_matches_the_running_duckdb():
    path = extension_file("ducklake")
    assert path.parent.name == f"v{duckdb.__version__}"
    assert path.name == "ducklake.duckdb_extension"


def test_a_missing_wheel_is_named(monkeypatch):
    monkeypatch.setattr(extensions.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ExtensionMissing, match=r"duckdb-extension-ducklake==\d"):
        extension_file("ducklake")


def test_a_wheel_for_another_duckdb_is_named(monkeypatch):
    monkeypatch.setattr(extensions.duckdb, "__version__", "0.0.1")
    with pytest.raises(ExtensionMissing, match=r"for DuckDB v\d.*not v0\.0\.1"):
        extension_file("sqlite_scanner")


def test_an_unknown_extension_is_refused():
    with pytest.raises(ExtensionMissing, match="no wheel known"):
        extension_file("spatial")
