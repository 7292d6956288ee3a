"""The warehouse: the DuckDB file (checked before connecting, waited for only when another
writer holds it) or, with NOSTR_WAREHOUSE=ducklake, a DuckLake attached as ``lake``; either way
its raw tables are checked against this version's schema once per process.

A Postgres catalog's connection string may hold a password, and S3 storage has a secret key:
neither is shown by the UI (build_resources binds them as environment variables), the
resource's repr, or a WarehouseUnusable message (DuckDB's own errors quote the whole
connection string: the password is replaced by <hidden> there)."""

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
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator

from nostr_assets.defs.resources.fields import about, check
from nostr_assets.lib.warehouse.extensions import ExtensionMissing
from nostr_assets.lib.warehouse.lake import S3Storage, check_storage, connect_lake
from nostr_assets.lib.warehouse.raw_table import SchemaMismatch
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.settings import (
    SettingsError,
    catalog_passwords,
    hide_password,
    parse_ducklake_catalog,
    problem,
)

# What a WarehouseUnusable calls the thing it names, by the setting that names it.
KINDS = {
    "NOSTR_DUCKDB_PATH": "DuckDB warehouse",
    "NOSTR_DUCKLAKE_CATALOG": "DuckLake catalog",
    "NOSTR_DUCKLAKE_DATA_PATH": "DuckLake data path",
}


class WarehouseUnusable(dg.Failure):
    """The DuckDB file cannot be used, and waiting will not help; the message says why."""

    def __init__(
        self, database: str, why: str, setting: str = "NOSTR_DUCKDB_PATH", hint: str = ""
    ) -> None:
        kind = KINDS.get(setting, "DuckDB warehouse")
        settings = f"{setting}, {hint}" if hint else setting
        super().__init__(description=f"{kind} {database!r} {why} ({settings})", allow_retries=False)


def one_line(error: BaseException) -> str:
    """DuckDB's message without the query excerpt and caret it adds, on one line."""
    text = str(error).split("\nLINE ", 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


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

    # With warehouse "duckdb" the lake fields are not read; the S3 ones only for s3:// data.
    warehouse: str = Field(default="duckdb", description=about("NOSTR_WAREHOUSE"))
    # repr=False: a Postgres connection string may hold a password.
    ducklake_catalog: str = Field(
        default="", description=about("NOSTR_DUCKLAKE_CATALOG"), repr=False
    )
    ducklake_data_path: str = Field(default="", description=about("NOSTR_DUCKLAKE_DATA_PATH"))
    ducklake_s3_endpoint: str = Field(default="", description=about("NOSTR_DUCKLAKE_S3_ENDPOINT"))
    ducklake_s3_region: str = Field(
        default="us-east-1", description=about("NOSTR_DUCKLAKE_S3_REGION")
    )
    ducklake_s3_access_key_id: str = Field(
        default="", description=about("NOSTR_DUCKLAKE_S3_ACCESS_KEY_ID")
    )
    ducklake_s3_secret_access_key: str = Field(
        default="", description=about("NOSTR_DUCKLAKE_S3_SECRET_ACCESS_KEY"), repr=False
    )

    @field_validator("warehouse", mode="before")
    @classmethod
    def _warehouse(cls, value: Any) -> Any:
        return check("NOSTR_WAREHOUSE", value)

    @field_validator("ducklake_catalog", mode="before")
    @classmethod
    def _catalog(cls, value: Any) -> Any:
        # As the setting parses it (the value may come straight from the environment, when it
        # holds a password), and refused without repeating the password.
        if not isinstance(value, str) or isinstance(value, dg.EnvVar) or not value.strip():
            return value  # an EnvVar binding is checked once resolved, in the run
        try:
            return parse_ducklake_catalog(value)
        except ValueError as error:
            shown = hide_password(value, *catalog_passwords(value))
            raise SettingsError([problem("NOSTR_DUCKLAKE_CATALOG", shown, str(error))]) from None

    @field_validator("ducklake_s3_endpoint", "ducklake_s3_region", mode="before")
    @classmethod
    def _s3(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and not value.strip():
            return value
        return check(f"NOSTR_{str(info.field_name).upper()}", value)

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

    @property
    def s3_storage(self) -> S3Storage:
        return S3Storage(
            endpoint=self.ducklake_s3_endpoint or None,
            region=self.ducklake_s3_region or "us-east-1",
            key_id=self.ducklake_s3_access_key_id or None,
            secret=self.ducklake_s3_secret_access_key or None,
        )

    def _lake_unusable(
        self, why: str, setting: str = "NOSTR_DUCKLAKE_CATALOG"
    ) -> WarehouseUnusable:
        """WarehouseUnusable for the lake, with no password or secret key in it."""
        secrets = [*catalog_passwords(self.ducklake_catalog), self.ducklake_s3_secret_access_key]
        if setting == "NOSTR_DUCKLAKE_DATA_PATH":
            subject, hint = self.ducklake_data_path, "NOSTR_DUCKLAKE_S3_*"
        else:
            subject, hint = self.ducklake_catalog, ""
        return WarehouseUnusable(
            hide_password(subject, *secrets), hide_password(why, *secrets), setting, hint
        )

    def _connect_lake(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        catalog = self.ducklake_catalog
        if catalog.startswith("sqlite:") and not read_only:
            # DuckLake creates the SQLite file, not the folder it goes in.
            Path(catalog.removeprefix("sqlite:")).parent.mkdir(parents=True, exist_ok=True)
        try:
            return connect_lake(
                catalog, self.ducklake_data_path, read_only, self._config(), self.s3_storage
            )
        except (duckdb.Error, ExtensionMissing) as error:
            raise self._lake_unusable(f"cannot be attached: {one_line(error)}") from None

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
        if self.is_lake:
            try:
                check_storage(conn, self.ducklake_data_path)
            except duckdb.Error as error:
                why = f"cannot be listed: {one_line(error)}"
                raise self._lake_unusable(why, "NOSTR_DUCKLAKE_DATA_PATH") from None
        try:
            upgrades = ensure_raw_tables(conn)
        except SchemaMismatch as mismatch:
            if self.is_lake:
                raise self._lake_unusable(f"has an incompatible schema: {mismatch}") from None
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
