"""The warehouse: the DuckDB file (checked before connecting, waited for only when another
writer holds it) or, with NOSTR_WAREHOUSE=ducklake, a DuckLake attached as ``lake``; either way
its raw tables are checked against this version's schema once per process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr, field_validator

from nostr_assets.defs.resources.fields import about, check
from nostr_assets.lib.warehouse.extensions import ExtensionMissing
from nostr_assets.lib.warehouse.lake import connect_lake
from nostr_assets.lib.warehouse.raw_table import SchemaMismatch
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.settings import SettingsError, problem


class WarehouseUnusable(dg.Failure):
    """The DuckDB file cannot be used, and waiting will not help; the message says why."""

    def __init__(self, database: str, why: str, setting: str = "NOSTR_DUCKDB_PATH") -> None:
        kind = "DuckLake catalog" if setting == "NOSTR_DUCKLAKE_CATALOG" else "DuckDB warehouse"
        super().__init__(description=f"{kind} {database!r} {why} ({setting})", allow_retries=False)


# DuckDB's main header: an 8-byte checksum, then these 4 bytes (DuckDB 0.9 to 1.5 alike).
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
# Another process writing the file (DuckDB allows one): worth waiting for, as dagster-duckdb
# does, 10 times from 0.1 s doubling (about 100 s). Nothing else is: a folder, a read-only or
# foreign file stays so, and dagster-duckdb used to spend those 100 s before saying anything.
LOCK_RETRIES = 10
FIRST_RETRY_DELAY_S = 0.1


def _writable(path: Path) -> bool:
    # As root, os.access says yes to everything; a file or folder without any write bit was
    # still made read-only on purpose (an archived warehouse), so honour the bits too.
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def warehouse_problem(database: str, read_only: bool = False) -> str | None:
    """Why a DuckDB file cannot be opened, or None when it looks usable. Looks only at the
    file system and the file's header: no connection, no lock, no wait."""
    if database == ":memory:" or database.startswith("md:"):
        return None
    path = Path(database)
    if path.is_dir():
        return "is a folder, not a file"
    if not path.exists():
        if read_only:
            return "does not exist yet"
        if not path.parent.is_dir():
            return f"cannot be created: its folder {path.parent} does not exist"
        if not _writable(path.parent):
            return f"cannot be created: its folder {path.parent} is not writable"
        return None
    if not read_only:
        if not _writable(path):
            return "is a read-only file"
        if not _writable(path.parent):
            # DuckDB writes its write-ahead log (<file>.wal) beside the file.
            return f"cannot be written: its folder {path.parent} is not writable"
    try:
        with path.open("rb") as file:
            header = file.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError as error:
        return f"cannot be read: {error.strerror}"
    if header[DUCKDB_MAGIC_OFFSET:] != DUCKDB_MAGIC:
        what = "an empty file" if not header else "corrupt or another kind of file"
        return f"is not a DuckDB database ({what}); move it away and DuckDB starts a new one"
    return None


def _is_lock_conflict(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource that checks the file before connecting, waits only for
    another writer, can open read-only, and closes its connection when the body raises.

    DuckDBResource.get_connection retries every IO error for about 100 s and closes only on a
    clean exit; a connection left open by a failed step keeps the file locked in that process
    until garbage collection, and the next connection with another configuration (read-only,
    say) is refused.
    """

    # With warehouse "duckdb" the two lake fields are not read.
    warehouse: str = Field(default="duckdb", description=about("NOSTR_WAREHOUSE"))
    ducklake_catalog: str = Field(default="", description=about("NOSTR_DUCKLAKE_CATALOG"))
    ducklake_data_path: str = Field(default="", description=about("NOSTR_DUCKLAKE_DATA_PATH"))

    @field_validator("warehouse", mode="before")
    @classmethod
    def _warehouse(cls, value: Any) -> Any:
        return check("NOSTR_WAREHOUSE", value)

    _schema_checked: bool = PrivateAttr(default=False)

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise SettingsError([problem("NOSTR_DUCKDB_PATH", value, "expected a file path")])
        return value

    def _config(self) -> dict[str, Any]:
        return {"custom_user_agent": "dagster", **self.connection_config}

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        delay = FIRST_RETRY_DELAY_S
        for attempt in range(LOCK_RETRIES + 1):
            try:
                return duckdb.connect(self.database, read_only=read_only, config=self._config())
            except duckdb.IOException as error:
                if not _is_lock_conflict(error):
                    raise WarehouseUnusable(self.database, f"cannot be opened: {error}") from None
                # A reader (a sensor) would rather skip a tick than wait: it gets the error.
                if read_only or attempt == LOCK_RETRIES:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    @property
    def is_lake(self) -> bool:
        return self.warehouse == "ducklake"

    def _connect_lake(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        catalog = self.ducklake_catalog
        if catalog.startswith("sqlite:") and not read_only:
            # DuckLake creates the SQLite file, not the folder it goes in.
            Path(catalog.removeprefix("sqlite:")).parent.mkdir(parents=True, exist_ok=True)
        try:
            return connect_lake(catalog, self.ducklake_data_path, read_only, self._config())
        except (duckdb.Error, ExtensionMissing) as error:
            raise WarehouseUnusable(
                catalog, f"cannot be attached: {error}", "NOSTR_DUCKLAKE_CATALOG"
            ) from None

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.is_lake:
            conn = self._connect_lake(read_only)
        else:
            why = warehouse_problem(self.database, read_only)
            if why is not None:
                raise WarehouseUnusable(self.database, why)
            conn = self._connect(read_only)
        try:
            if not read_only and not self._schema_checked:
                self._check_schema(conn)
            yield conn
        finally:
            conn.close()

    def _check_schema(self, conn: duckdb.DuckDBPyConnection) -> None:
        """The start-up schema check, once per process: old tables upgraded, a lossy
        difference refused before any asset writes."""
        try:
            upgrades = ensure_raw_tables(conn)
        except SchemaMismatch as mismatch:
            if self.is_lake:
                raise WarehouseUnusable(
                    self.ducklake_catalog,
                    f"has an incompatible schema: {mismatch}",
                    "NOSTR_DUCKLAKE_CATALOG",
                ) from None
            raise WarehouseUnusable(
                self.database, f"has an incompatible schema: {mismatch}"
            ) from None
        for statement in upgrades:
            dg.get_dagster_logger().info(f"Warehouse upgraded: {statement}")
        self._schema_checked = True

    def exists(self) -> bool:
        if self.is_lake:
            catalog = self.ducklake_catalog
            return not catalog.startswith("sqlite:") or Path(catalog[len("sqlite:") :]).exists()
        return self.database == ":memory:" or Path(self.database).exists()
