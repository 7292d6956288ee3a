"""DuckDB extensions from their PyPI wheels, never from the internet.

DuckDB's ``INSTALL ducklake`` downloads from extensions.duckdb.org, which a server without
internet access (and this project's CI) cannot reach. The same extension files ship on PyPI as
wheels (``duckdb-extension-ducklake`` and others, one per extension) pinned beside duckdb in
pyproject.toml: an extension loads only into the exact DuckDB version it was built for. Each
wheel holds ``duckdb_extension_<name>/extensions/v<duckdb version>/<name>.duckdb_extension``;
``INSTALL '<that file>'`` copies it into DuckDB's extension directory, with no network, and
later connections (dbt's among them) then load it by name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import duckdb

# Extension name -> the PyPI wheel that carries it (parquet is built into duckdb itself).
WHEELS = {
    "ducklake": "duckdb-extension-ducklake",
    "sqlite_scanner": "duckdb-extension-sqlite-scanner",
    "postgres_scanner": "duckdb-extension-postgres-scanner",
    "httpfs": "duckdb-extension-httpfs",
}


class ExtensionMissing(RuntimeError):
    """An extension's wheel is not installed, or holds no file for this DuckDB version."""


def extension_file(name: str) -> Path:
    """The ``.duckdb_extension`` file of ``name`` for the running DuckDB, inside its wheel."""
    if name not in WHEELS:
        raise ExtensionMissing(f"no wheel known for the DuckDB extension {name!r}")
    wheel = WHEELS[name]
    version = duckdb.__version__
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionMissing(
            f"the DuckDB extension {name} needs the package {wheel}=={version}, which is not "
            "installed (make setup installs it)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.is_file():
        found = sorted(p.parent.name for p in folder.glob("extensions/*/*.duckdb_extension"))
        raise ExtensionMissing(
            f"the installed {wheel} is for DuckDB {', '.join(found) or 'no version'}, not "
            f"v{version}: install {wheel}=={version} (make setup)"
        )
    return path


def load_extensions(conn: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
    """Install ``names`` from their wheels into DuckDB's extension directory, and load them."""
    for name in names:
        path = extension_file(name)
        quoted = str(path).replace("'", "''")
        conn.execute(f"install '{quoted}'")
        conn.execute(f"load {name}")
