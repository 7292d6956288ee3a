"""The demo's GeoIP databases: invented places for the demo's relays, so that the dashboard's
world map has bubbles offline.

Every demo relay runs on this machine, on a loopback address of its own (127.0.0.2,
127.0.0.3, ...: relays.py), and no real database places a loopback address. So the demo writes
two small MaxMind-format files into its folder when it starts, with ``mmdb-writer`` (the test
extra), and points NOSTR_GEOIP_CITY_DB and NOSTR_GEOIP_ASN_DB at them. Each relay's address
gets a different city where such a relay could plausibly run, and a private-use AS number
(64512-65534, RFC 6996) whose name says "demo". The locations are INVENTED, and say so: in the
demo's progress output, on the dashboard page the demo writes (``mark_dashboard``), and in the
databases' editions, which every row of raw.relay_geolocations carries.

The records have the GeoLite2-City and GeoLite2-ASN layout that lib/network/geolocation.py
reads, as tests/mmdb_factory.py writes them; the ASN edition declares itself GeoLite2-ASN
compatible (as DB-IP's does), since geoip2 reads ASN records only from such a database.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

CITY_EDITION = "nostr-analytics-Demo-City (invented locations)"
ASN_EDITION = "nostr-analytics-Demo-ASN (invented; compat=GeoLite2-ASN)"


@dataclass(frozen=True)
class DemoPlace:
    city: str
    country_code: str
    country_name: str
    latitude: float
    longitude: float
    asn: int  # private use (64512-65534): no real network has it
    as_organization: str

    @property
    def label(self) -> str:
        return f"{self.city} {self.country_code}"


# By relay name (network.RELAY_PROFILES): a different country each, where such a relay could
# run. All invented.
PLACES: dict[str, DemoPlace] = {
    "hub": DemoPlace(
        "Frankfurt", "DE", "Germany", 50.1109, 8.6821, 64512, "Demo Hosting Rhein-Main (demo)"
    ),
    "nihongo": DemoPlace(
        "Tokyo", "JP", "Japan", 35.6895, 139.6917, 64513, "Demo Cloud Tokyo (demo)"
    ),
    "index": DemoPlace(
        "Ashburn", "US", "United States", 39.0438, -77.4874, 64514, "Demo Data Centers (demo)"
    ),
    "vault": DemoPlace(
        "Helsinki", "FI", "Finland", 60.1699, 24.9384, 64515, "Demo Colocation Helsinki (demo)"
    ),
}
NOTICE_ID = "demo-invented-locations"


def writer_installed() -> bool:
    """Whether ``mmdb-writer`` (the test extra) is there to write the demo's databases."""
    return importlib.util.find_spec("mmdb_writer") is not None


def placements(
    hosts: Sequence[str], relay_names: Sequence[str], own_hosts: bool
) -> tuple[dict[str, DemoPlace], str | None]:
    """Where the demo's database places each relay's address (IP -> invented place), from the
    relays' hosts and names in the same order; when there is no database, why not."""
    if not own_hosts:
        return {}, (
            "no loopback address but 127.0.0.1 can be bound here, so every relay runs on "
            "127.0.0.1, which a GeoIP database cannot tell apart: no demo GeoIP database, "
            "the map stays empty"
        )
    if not writer_installed():
        return {}, (
            "mmdb-writer is not installed (test extra: `make setup`): no demo GeoIP database, "
            "the relays are not placed and the map stays empty"
        )
    return {host: PLACES[name] for host, name in zip(hosts, relay_names, strict=True)}, None


def city_record(place: DemoPlace) -> dict[str, Any]:
    """A GeoLite2-City record."""
    country = {"iso_code": place.country_code, "names": {"en": place.country_name}}
    return {
        "country": country,
        "registered_country": country,
        "city": {"names": {"en": place.city}},
        "location": {"latitude": place.latitude, "longitude": place.longitude},
    }


def asn_record(place: DemoPlace) -> dict[str, Any]:
    """A GeoLite2-ASN record."""
    return {
        "autonomous_system_number": place.asn,
        "autonomous_system_organization": place.as_organization,
    }


def write_databases(city_db: Path, asn_db: Path, placed: Mapping[str, DemoPlace]) -> None:
    """Write the city and ASN databases placing each address (``placed``: IP -> place)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet  # type: ignore[import-untyped]  # mmdb-writer's own dependency

    for path, edition, record in (
        (city_db, CITY_EDITION, city_record),
        (asn_db, ASN_EDITION, asn_record),
    ):
        writer = MMDBWriter(
            ip_version=6,
            # In an IPv6 tree, IPv4 networks live at ::a.b.c.d, as in GeoLite2 files.
            ipv4_compatible=True,
            database_type=edition,
            languages=["en"],
            description={"en": f"{edition}: written by the nostr-analytics demo, not real"},
        )
        for ip, place in placed.items():
            writer.insert_network(IPSet([f"{ip}/32"]), record(place))
        path.parent.mkdir(parents=True, exist_ok=True)
        writer.to_db_file(str(path))


def notice_text(placed: Mapping[str, DemoPlace]) -> str:
    places = ", ".join(f"{place.city} ({place.country_code})" for place in placed.values())
    return (
        "Demo: these relay locations are invented. The demo's relays all run on this "
        f"machine ({', '.join(placed)}); the demo's own GeoIP database places them in "
        f"{places}, with private-use AS numbers named \u201cdemo\u201d, so that the map has "
        "something to show offline."
    )


def mark_dashboard(page: Path, placed: Mapping[str, DemoPlace]) -> bool:
    """Say on the demo's dashboard page, under the map's title, that the relays' locations
    are invented (at the top of the page if it has no map panel); False when there is no
    page. The dashboard's own code knows nothing of the demo: the demo writes this itself."""
    if not page.is_file():
        return False
    html = page.read_text(encoding="utf-8")
    if NOTICE_ID in html:
        return True
    notice = f'<p class="warnings" id="{NOTICE_ID}">{escape(notice_text(placed))}</p>'
    panel = html.find('id="panel-relay_map"')
    title_end = html.find("</h2>", panel) if panel >= 0 else -1
    if title_end >= 0:
        at = title_end + len("</h2>")
    else:
        body = html.find("<body")
        at = html.find(">", body) + 1 if body >= 0 else 0
    temporary = page.with_name(f".{page.name}.demo")
    temporary.write_text(html[:at] + notice + html[at:], encoding="utf-8")
    os.replace(temporary, page)
    return True
