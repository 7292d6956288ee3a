"""Configurable resources, bound to environment variables in one place.

Every knob a user turns (relays, kinds, timeouts, concurrency, address guard, database paths)
is a resource field; `build_resources()` binds each to its `NOSTR_*` variable when that is set
and to a default that works on a fresh clone otherwise.
"""

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource

from nostr_assets.defs.dbt.project import DBT_EXECUTABLE, dbt_project
from nostr_assets.lib.relay_client import ClientConfig
from nostr_assets.lib.relay_url import InvalidRelayUrl, normalize_relay_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_ROOT / "data"
GEOIP_DIR = DATA_DIR / "geoip"

TRUE_WORDS = ("1", "true", "yes", "on")


def _flag(value: str) -> bool:
    return value.strip().lower() in TRUE_WORDS


def _parse_kinds(value: str) -> list[int] | None:
    kinds = [int(part) for part in value.replace(" ", "").split(",") if part]
    bad = [k for k in kinds if not 0 <= k <= 65535]
    if bad:
        raise ValueError(f"kinds out of 0..65535: {bad}")
    return kinds or None


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource, closing its connection when the body raises too.

    DuckDBResource.get_connection closes only on a clean exit; a connection left open by a
    failed step keeps the file locked in that process until garbage collection, and the next
    connection with another configuration (read-only, say) is refused.
    """

    @contextmanager
    def get_connection(self):
        with super().get_connection() as conn:
            try:
                yield conn
            finally:
                conn.close()


class RelaySourcesResource(dg.ConfigurableResource):
    """Where the bootstrap relay list comes from: a file of URLs and `NOSTR_RELAYS`."""

    relays_file: str = str(DATA_DIR / "relays.txt")
    extra_relays: str = ""  # comma-separated, from NOSTR_RELAYS

    def bootstrap(self) -> tuple[dict[str, str], dict[str, str]]:
        """(normalised url -> source, refused raw url -> reason)."""
        found: dict[str, str] = {}
        refused: dict[str, str] = {}
        lines: list[tuple[str, str]] = []
        if self.relays_file:
            path = Path(self.relays_file)
            if not path.is_absolute():
                path = PROJECT_ROOT / path
            if path.exists():
                for line in path.read_text().splitlines():
                    line = line.split("#", 1)[0].strip()
                    if line:
                        lines.append((line, "bootstrap"))
        lines += [(u.strip(), "env") for u in self.extra_relays.split(",") if u.strip()]
        for raw, source in lines:
            try:
                found.setdefault(normalize_relay_url(raw), source)
            except InvalidRelayUrl as error:
                refused[raw] = error.reason
        return found, refused


class NostrCrawlerResource(dg.ConfigurableResource):
    """How relays are contacted: kinds, timeouts, concurrency and the address guard."""

    kinds: str = ""  # comma-separated kinds from NOSTR_KINDS; empty means all kinds
    connect_timeout_s: float = 10.0
    idle_timeout_s: float = 15.0
    total_timeout_s: float = 300.0
    concurrency: int = 16  # relay connections open at once
    hours_in_flight: int = 8  # hours of a backfill fetched (or waiting to land) at once
    page_limit: int = 500
    max_frame_bytes: int = 2**20
    allow_private_addresses: bool = False

    def kind_list(self) -> list[int] | None:
        return _parse_kinds(self.kinds)

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            connect_timeout=self.connect_timeout_s,
            idle_timeout=self.idle_timeout_s,
            total_timeout=self.total_timeout_s,
            page_limit=self.page_limit,
            max_frame_bytes=self.max_frame_bytes,
            allow_private=self.allow_private_addresses,
        )


class GeoIPResource(dg.ConfigurableResource):
    """Local MaxMind-format databases (.mmdb); never a web API."""

    city_db: str = ""  # NOSTR_GEOIP_CITY_DB; empty: the best database found in data/geoip/
    asn_db: str = ""  # NOSTR_GEOIP_ASN_DB; empty: data/geoip/GeoLite2-ASN.mmdb when present

    def city_path(self) -> Path:
        if self.city_db:
            return Path(self.city_db)
        for name in ("GeoLite2-City.mmdb", "dbip-city-lite.mmdb"):
            if (GEOIP_DIR / name).exists():
                return GEOIP_DIR / name
        return GEOIP_DIR / "dbip-city-lite.mmdb"

    def asn_path(self) -> Path | None:
        if self.asn_db:
            return Path(self.asn_db)
        default = GEOIP_DIR / "GeoLite2-ASN.mmdb"
        return default if default.exists() else None


def _env(name: str, default: str) -> str:
    """`EnvVar(name)` when the variable is set, so the UI shows where a value comes from."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def database_path() -> str:
    return _env("NOSTR_DUCKDB_PATH", str(DATA_DIR / "nostr.duckdb"))


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "duckdb": WarehouseResource(
            database=database_path(),
            # DuckDB checkpoints its WAL into the file every 16 MB by default; during a backfill
            # that was two thirds of the landing time (bench_backfill). Checkpoint less often:
            # the WAL is still fsynced at every commit, so nothing committed can be lost.
            connection_config={"checkpoint_threshold": "256MB"},
        ),
        "relay_sources": RelaySourcesResource(
            relays_file=_env("NOSTR_RELAYS_FILE", str(DATA_DIR / "relays.txt")),
            extra_relays=_env("NOSTR_RELAYS", ""),
        ),
        "crawler": NostrCrawlerResource(
            kinds=_env("NOSTR_KINDS", ""),
            concurrency=int(os.environ.get("NOSTR_CONCURRENCY", "16")),
            connect_timeout_s=float(os.environ.get("NOSTR_CONNECT_TIMEOUT", "10")),
            idle_timeout_s=float(os.environ.get("NOSTR_IDLE_TIMEOUT", "15")),
            total_timeout_s=float(os.environ.get("NOSTR_TOTAL_TIMEOUT", "300")),
            allow_private_addresses=_flag(os.environ.get("NOSTR_ALLOW_PRIVATE_ADDRESSES", "")),
        ),
        "geoip": GeoIPResource(
            city_db=_env("NOSTR_GEOIP_CITY_DB", ""),
            asn_db=_env("NOSTR_GEOIP_ASN_DB", ""),
        ),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
    }
