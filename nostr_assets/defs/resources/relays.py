"""Which relays to crawl (a file and NOSTR_RELAYS) and how to contact them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, ValidationInfo, field_validator

from nostr_assets.defs.resources.fields import about, check
from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.crawler import CrawlWindow, window_crawler
from nostr_assets.lib.network.hourly_fetch import MAX_SPAN_EVENTS
from nostr_assets.lib.network.probe import RelayProbe, probe_relay
from nostr_assets.settings import parse_kinds, parse_relay_urls, read_relays_file


class RelaySourcesResource(dg.ConfigurableResource):
    """Where the relays we were told to crawl come from: a file of URLs and NOSTR_RELAYS."""

    relays_file: str = Field(default="", description=about("NOSTR_RELAYS_FILE") + "; empty: none")
    extra_relays: str = Field(default="", description=about("NOSTR_RELAYS"))
    urls_per_event: int = Field(default=100, description=about("NOSTR_CATALOG_URLS_PER_EVENT"))
    new_urls_per_run: int = Field(default=1000, description=about("NOSTR_CATALOG_NEW_URLS_PER_RUN"))

    @field_validator("urls_per_event", "new_urls_per_run", mode="before")
    @classmethod
    def _bounds(cls, value: Any, info: ValidationInfo) -> Any:
        variable = {
            "urls_per_event": "NOSTR_CATALOG_URLS_PER_EVENT",
            "new_urls_per_run": "NOSTR_CATALOG_NEW_URLS_PER_RUN",
        }[str(info.field_name)]
        return check(variable, value)

    @field_validator("relays_file", mode="before")
    @classmethod
    def _relays_file(cls, value: Any) -> Any:
        if value:
            read_relays_file(Path(value))  # raises one line per bad URL, or a missing file
        return value

    @field_validator("extra_relays", mode="before")
    @classmethod
    def _extra_relays(cls, value: Any) -> Any:
        return ",".join(check("NOSTR_RELAYS", value))

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
    "max_window_mb": "NOSTR_MAX_WINDOW_MB",
    "min_relay_cap": "NOSTR_MIN_RELAY_CAP",
    "nip11_max_kb": "NOSTR_NIP11_MAX_KB",
    "allow_private_addresses": "NOSTR_ALLOW_PRIVATE_ADDRESSES",
}


class NostrCrawlerResource(dg.ConfigurableResource):
    """How relays are contacted: kinds, timeouts, concurrency and the address guard."""

    kinds: str = Field(default="", description=about("NOSTR_KINDS") + "; empty: every kind")
    connect_timeout_s: float = Field(default=10.0, description=about("NOSTR_CONNECT_TIMEOUT"))
    idle_timeout_s: float = Field(default=15.0, description=about("NOSTR_IDLE_TIMEOUT"))
    total_timeout_s: float = Field(default=300.0, description=about("NOSTR_TOTAL_TIMEOUT"))
    concurrency: int = Field(default=256, description=about("NOSTR_CONCURRENCY"))
    max_window_mb: int = Field(default=64, description=about("NOSTR_MAX_WINDOW_MB"))
    min_relay_cap: int = Field(default=10, description=about("NOSTR_MIN_RELAY_CAP"))
    nip11_max_kb: int = Field(default=256, description=about("NOSTR_NIP11_MAX_KB"))
    hours_in_flight: int = Field(
        default=8, ge=1, description="hours of a backfill fetched (or waiting to land) at once"
    )
    max_span_events: int = Field(
        default=MAX_SPAN_EVENTS,
        ge=1,
        description="a backfill fetches as many hours in one window per relay as hold about "
        "this many events (at most a day); 1: hour by hour",
    )
    page_limit: int = Field(default=500, ge=1, description="events asked for per REQ page")
    max_frame_bytes: int = Field(default=2**20, ge=1024, description="largest frame accepted")
    allow_private_addresses: bool = Field(
        default=False, description=about("NOSTR_ALLOW_PRIVATE_ADDRESSES")
    )

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, value: Any) -> Any:
        return ",".join(str(k) for k in check("NOSTR_KINDS", value) or ())

    @field_validator(*_CRAWLER_VARIABLES, mode="before")
    @classmethod
    def _checked(cls, value: Any, info: ValidationInfo) -> Any:
        """The same parser as the variable's, whichever way the value arrives."""
        return check(_CRAWLER_VARIABLES[str(info.field_name)], value)

    def kind_list(self) -> list[int] | None:
        kinds = parse_kinds(self.kinds)
        return list(kinds) if kinds else None

    # The two ways assets reach relays. Tests of asset logic override these two in a fake
    # crawler (tests/fake_crawler.py); every other part of the resource stays as it is.
    def window_crawler(self) -> CrawlWindow:
        """Crawls one window from every relay, with these kinds and settings."""
        return window_crawler(self.kind_list(), self.client_config())

    async def probe(self, url: str) -> RelayProbe:
        """One relay's reachability, round-trip times and NIP-11 document, now."""
        return await probe_relay(url, config=self.client_config())

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            connect_timeout=self.connect_timeout_s,
            idle_timeout=self.idle_timeout_s,
            total_timeout=self.total_timeout_s,
            max_window_bytes=self.max_window_mb * 2**20,
            min_relay_cap=self.min_relay_cap,
            nip11_max_bytes=self.nip11_max_kb * 1024,
            page_limit=self.page_limit,
            max_frame_bytes=self.max_frame_bytes,
            allow_private=self.allow_private_addresses,
        )
