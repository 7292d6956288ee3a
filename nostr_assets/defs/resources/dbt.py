"""dbt, pointed at the warehouse the Python assets write."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from pydantic import Field, field_validator

from nostr_assets.defs.resources.fields import about, check
from nostr_assets.lib.warehouse.extensions import ExtensionMissing, load_extensions
from nostr_assets.lib.warehouse.lake import LAKE_ALIAS, lake_extensions


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block, then put them back."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def resolved_catalog(catalog: str) -> str:
    """A SQLite catalog's path made absolute (dbt runs in dbt_project/); Postgres as given."""
    if catalog.startswith("sqlite:"):
        return f"sqlite:{Path(catalog.removeprefix('sqlite:')).resolve()}"
    return catalog


def resolved_data_path(data_path: str) -> str:
    """A data folder made absolute and ending in a separator, as the settings write it; an
    s3:// prefix as given."""
    if not data_path or "://" in data_path:
        return data_path
    return f"{Path(data_path).resolve()}/"


def install_lake_extensions(catalog: str, data_path: str) -> None:
    """Install the extensions the profile's lake output names, from their PyPI wheels, into
    DuckDB's extension folder, on a throwaway connection: dbt's own `extensions:` then only
    loads them (INSTALL of an installed extension downloads nothing)."""
    conn = duckdb.connect(":memory:")
    try:
        load_extensions(conn, lake_extensions(catalog, data_path))
    except ExtensionMissing as missing:
        raise dg.Failure(
            description=f"dbt cannot attach the DuckLake: {missing}", allow_retries=False
        ) from None
    finally:
        conn.close()


def on_the_lake(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with every relation in the lake's database.

    The manifest Dagster loads was parsed for the DuckDB file (its relations are in the file's
    database, `nostr`); on the lake dbt builds the same relations in `lake`. dagster-dbt reads
    a model's relation_name from that manifest to count its rows."""

    def moved(node: Mapping[str, Any]) -> Mapping[str, Any]:
        database, name = node.get("database"), node.get("relation_name")
        if not database or not name or not name.startswith(f'"{database}".'):
            return node
        relation = f'"{LAKE_ALIAS}".' + name.removeprefix(f'"{database}".')
        return {**node, "database": LAKE_ALIAS, "relation_name": relation}

    lake = dict(manifest)
    for kind in ("nodes", "sources"):
        lake[kind] = {uid: moved(node) for uid, node in manifest.get(kind, {}).items()}
    return lake


def read_lake_in_memory(credentials: Any) -> None:
    """dagster-dbt opens dbt's DuckDB in this process too, to count the rows dbt built: read-only
    (DuckDB allows one writing process) at its path made absolute. The lake output's DuckDB is
    ``:memory:``, which neither survives ('/…/dbt_project/:memory:' does not exist, and an
    in-memory database cannot be read-only): keep it in memory and attach the lake read-only."""
    credentials.path = ":memory:"
    (credentials.config_options or {}).pop("access_mode", None)
    for attachment in credentials.attach or []:
        attachment.read_only = True


class NostrDbtResource(DbtCliResource):
    """dbt, pointed at the warehouse the Python assets write.

    dbt's profile reads NOSTR_WAREHOUSE (its output: `dev`, the DuckDB file, or `lake`), then
    NOSTR_DUCKDB_PATH or NOSTR_DUCKLAKE_CATALOG and NOSTR_DUCKLAKE_DATA_PATH. dagster-dbt
    builds the dbt process's environment from os.environ inside `cli()` (and loads the profile
    there too, for its adapter). Setting the resolved values for exactly that call means dbt
    opens the warehouse this resource names, whether it came from the environment, a default
    or a test, and whatever the working directory.
    """

    duckdb_path: str = Field(description=about("NOSTR_DUCKDB_PATH"))
    # With warehouse "duckdb" the two lake fields are not read; empty means the setting's
    # default, which the profile applies by the same rules.
    warehouse: str = Field(default="duckdb", description=about("NOSTR_WAREHOUSE"))
    # repr=False: a Postgres connection string may hold a password.
    ducklake_catalog: str = Field(
        default="", description=about("NOSTR_DUCKLAKE_CATALOG"), repr=False
    )
    ducklake_data_path: str = Field(default="", description=about("NOSTR_DUCKLAKE_DATA_PATH"))

    @field_validator("warehouse", mode="before")
    @classmethod
    def _warehouse(cls, value: Any) -> Any:
        return check("NOSTR_WAREHOUSE", value)

    @property
    def is_lake(self) -> bool:
        return self.warehouse == "ducklake"

    def dbt_environment(self) -> dict[str, str]:
        """The variables the profile reads, as this resource resolves them."""
        return {
            "NOSTR_WAREHOUSE": self.warehouse,
            "NOSTR_DUCKDB_PATH": str(Path(self.duckdb_path).resolve()),
            "NOSTR_DUCKLAKE_CATALOG": resolved_catalog(self.ducklake_catalog),
            "NOSTR_DUCKLAKE_DATA_PATH": resolved_data_path(self.ducklake_data_path),
        }

    def cli(self, args, **kwargs):
        environment = self.dbt_environment()
        if self.is_lake:
            install_lake_extensions(
                environment["NOSTR_DUCKLAKE_CATALOG"], environment["NOSTR_DUCKLAKE_DATA_PATH"]
            )
        with _environment(**environment):
            invocation = super().cli(args, **kwargs)
        if self.is_lake:
            invocation.manifest = on_the_lake(invocation.manifest)
        return invocation

    def _initialize_dbt_core_adapter(self, args):
        adapter = super()._initialize_dbt_core_adapter(args)
        if self.is_lake:
            read_lake_in_memory(adapter.config.credentials)
        return adapter
