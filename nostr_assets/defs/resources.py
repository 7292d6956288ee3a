"""Configurable resources, built from the settings (nostr_assets/settings.py) in one place.

Every knob a user turns is a resource field, so the UI shows the value in use. The fields get
the values `load_settings()` parsed, not `dg.EnvVar` bindings: an EnvVar is read again, in the
run's process, through Dagster's own parsing (pydantic accepts "t" and "n" as booleans), which
is the second configuration path issue 7 removes. Each field is validated by the parser of
its setting, so a value given another way (a test, the launchpad's run config) is refused
with the same one line at resource init.

A bad environment stops the code location from loading: `build_resources()` raises the
SettingsError, whose message is one line per bad variable, and Dagster shows it as the
location's load error. Loading with a fallback instead would run the hourly schedule with
settings nobody chose.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator

from nostr_assets.defs.dbt.project import DBT_EXECUTABLE, dbt_project
from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.geolocation import asn_database_in, city_database_in
from nostr_assets.lib.warehouse.raw_table import SchemaMismatch
from nostr_assets.lib.warehouse.schema import ensure_raw_tables
from nostr_assets.settings import (
    BY_NAME,
    Settings,
    SettingsError,
    find_project_root,
    load_settings,
    parse_kinds,
    parse_relay_urls,
    problem,
    read_relays_file,
)


def _about(name: str) -> str:
    """A field's description in the UI: its variable and meaning, from the settings table."""
    setting = BY_NAME[name]
    return f"{name}: {setting.meaning} ({setting.type})"


def _check(name: str, value: Any) -> Any:
    """``value`` parsed by the parser of setting ``name``; one line naming it when refused."""
    try:
        return BY_NAME[name].parse(value if isinstance(value, str) else str(value))
    except ValueError as error:
        raise SettingsError([problem(name, value, str(error))]) from None


# ---------------------------------------------------------------------------------------------
# The warehouse


class WarehouseUnusable(dg.Failure):
    """The DuckDB file cannot be used, and waiting will not help; the message says why."""

    def __init__(self, database: str, why: str) -> None:
        super().__init__(
            description=f"DuckDB warehouse {database!r} {why} (NOSTR_DUCKDB_PATH)",
            allow_retries=False,
        )


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

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
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
            raise WarehouseUnusable(
                self.database, f"has an incompatible schema: {mismatch}"
            ) from None
        for statement in upgrades:
            dg.get_dagster_logger().info(f"Warehouse upgraded: {statement}")
        self._schema_checked = True

    def exists(self) -> bool:
        return self.database == ":memory:" or Path(self.database).exists()


# ---------------------------------------------------------------------------------------------
# Relays and the crawl


class RelaySourcesResource(dg.ConfigurableResource):
    """Where the relays we were told to crawl come from: a file of URLs and NOSTR_RELAYS."""

    relays_file: str = Field(default="", description=_about("NOSTR_RELAYS_FILE") + "; empty: none")
    extra_relays: str = Field(default="", description=_about("NOSTR_RELAYS"))

    @field_validator("relays_file", mode="before")
    @classmethod
    def _relays_file(cls, value: Any) -> Any:
        if value:
            read_relays_file(Path(value))  # raises one line per bad URL, or a missing file
        return value

    @field_validator("extra_relays", mode="before")
    @classmethod
    def _extra_relays(cls, value: Any) -> Any:
        return ",".join(_check("NOSTR_RELAYS", value))

    def bootstrap(self) -> dict[str, str]:
        """Listed relays now: normalised url -> source ("bootstrap" for the file, "env" for
        NOSTR_RELAYS). The file is read on every call, so editing it needs no reload; a bad
        line added since load raises SettingsError naming it."""
        found: dict[str, str] = {}
        if self.relays_file:
            for url in read_relays_file(Path(self.relays_file)):
                found.setdefault(url, "bootstrap")
        for url in parse_relay_urls(self.extra_relays):
            found.setdefault(url, "env")
        return found

    def listed(self) -> list[str]:
        """The relays the configuration lists now; catalogued ones it no longer lists are
        retired (see relays/relay_list.py)."""
        return sorted(self.bootstrap())


# Crawler fields checked by the parser of the variable that sets them.
_CRAWLER_VARIABLES = {
    "concurrency": "NOSTR_CONCURRENCY",
    "connect_timeout_s": "NOSTR_CONNECT_TIMEOUT",
    "idle_timeout_s": "NOSTR_IDLE_TIMEOUT",
    "total_timeout_s": "NOSTR_TOTAL_TIMEOUT",
    "allow_private_addresses": "NOSTR_ALLOW_PRIVATE_ADDRESSES",
}


class NostrCrawlerResource(dg.ConfigurableResource):
    """How relays are contacted: kinds, timeouts, concurrency and the address guard."""

    kinds: str = Field(default="", description=_about("NOSTR_KINDS") + "; empty: every kind")
    connect_timeout_s: float = Field(default=10.0, description=_about("NOSTR_CONNECT_TIMEOUT"))
    idle_timeout_s: float = Field(default=15.0, description=_about("NOSTR_IDLE_TIMEOUT"))
    total_timeout_s: float = Field(default=300.0, description=_about("NOSTR_TOTAL_TIMEOUT"))
    concurrency: int = Field(default=16, description=_about("NOSTR_CONCURRENCY"))
    hours_in_flight: int = Field(
        default=8, ge=1, description="hours of a backfill fetched (or waiting to land) at once"
    )
    page_limit: int = Field(default=500, ge=1, description="events asked for per REQ page")
    max_frame_bytes: int = Field(default=2**20, ge=1024, description="largest frame accepted")
    allow_private_addresses: bool = Field(
        default=False, description=_about("NOSTR_ALLOW_PRIVATE_ADDRESSES")
    )

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, value: Any) -> Any:
        return ",".join(str(k) for k in _check("NOSTR_KINDS", value) or ())

    @field_validator(*_CRAWLER_VARIABLES, mode="before")
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        """The same parser as the variable's, whichever way the value arrives."""
        return _check(_CRAWLER_VARIABLES[info.field_name], value)

    def kind_list(self) -> list[int] | None:
        kinds = parse_kinds(self.kinds)
        return list(kinds) if kinds else None

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            connect_timeout=self.connect_timeout_s,
            idle_timeout=self.idle_timeout_s,
            total_timeout=self.total_timeout_s,
            page_limit=self.page_limit,
            max_frame_bytes=self.max_frame_bytes,
            allow_private=self.allow_private_addresses,
        )


# ---------------------------------------------------------------------------------------------
# Geolocation and dbt


class GeoIPResource(dg.ConfigurableResource):
    """Local MaxMind-format databases (.mmdb); never a web API."""

    city_db: str = Field(default="", description=_about("NOSTR_GEOIP_CITY_DB"))
    asn_db: str = Field(default="", description=_about("NOSTR_GEOIP_ASN_DB"))
    geoip_dir: str = Field(default="", description="where to look when a path is empty")

    def _folder(self) -> Path:
        return Path(self.geoip_dir or find_project_root() / "data" / "geoip")

    def city_path(self) -> Path:
        return Path(self.city_db) if self.city_db else city_database_in(self._folder())

    def asn_path(self) -> Path | None:
        return Path(self.asn_db) if self.asn_db else asn_database_in(self._folder())


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


class NostrDbtResource(DbtCliResource):
    """dbt, pointed at the warehouse the Python assets write.

    dbt's profile reads NOSTR_DUCKDB_PATH; dagster-dbt builds the dbt process's environment
    from os.environ inside `cli()` (and loads the profile there too, for its adapter). Setting
    the resolved absolute path for exactly that call means dbt opens the file this resource
    names, whether it came from the environment, a default or a test, and whatever the
    working directory.
    """

    duckdb_path: str = Field(description=_about("NOSTR_DUCKDB_PATH"))

    def cli(self, args, **kwargs):  # type: ignore[override]
        with _environment(NOSTR_DUCKDB_PATH=str(Path(self.duckdb_path).resolve())):
            return super().cli(args, **kwargs)


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """Every resource of the code location from the settings; raises SettingsError (one line
    per bad variable) when the environment is bad."""
    settings = load_settings() if settings is None else settings
    database = str(settings.duckdb_path)
    return {
        "duckdb": WarehouseResource(
            database=database,
            # DuckDB checkpoints its WAL into the file every 16 MB by default; during a backfill
            # that was two thirds of the landing time (bench_backfill). Checkpoint less often:
            # the WAL is still fsynced at every commit, so nothing committed can be lost.
            connection_config={"checkpoint_threshold": "256MB"},
        ),
        "relay_sources": RelaySourcesResource(
            relays_file=str(settings.relays_file or ""),
            extra_relays=",".join(settings.relays),
        ),
        "crawler": NostrCrawlerResource(
            kinds=",".join(str(k) for k in settings.kinds or ()),
            concurrency=settings.concurrency,
            connect_timeout_s=settings.connect_timeout,
            idle_timeout_s=settings.idle_timeout,
            total_timeout_s=settings.total_timeout,
            allow_private_addresses=settings.allow_private_addresses,
        ),
        "geoip": GeoIPResource(
            city_db=str(settings.geoip_city_db or ""),
            asn_db=str(settings.geoip_asn_db or ""),
            geoip_dir=str(settings.project_root / "data" / "geoip"),
        ),
        "dbt": NostrDbtResource(
            project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE, duckdb_path=database
        ),
    }
