"""The demo's relay addresses and its GeoIP databases (nostr_assets/demo/geoip.py, relays.py).

Protects: each demo relay gets a loopback address of its own, bound by nostr-relay (its config
names the address for uvicorn), or all share 127.0.0.1 where no other can be bound; the demo's
.mmdb files, read by the project's own GeoLocator, place each address where the demo says (a
different country per relay, private-use AS numbers named "demo", editions that say "Demo")
and nothing else; without a database the demo says why; and the dashboard page the demo wrote
says the locations are invented, under the map's title, once.
"""

from __future__ import annotations

import socket
import sys

import pytest

from nostr_assets.demo import geoip, relays
from nostr_assets.demo.geoip import PLACES, mark_dashboard, placements, write_databases
from nostr_assets.demo.network import RELAY_PROFILES
from nostr_assets.demo.relays import RelaySpec, config_text, relay_addresses
from nostr_assets.lib.network.geolocation import GeoLocator

NAMES = [profile.name for profile in RELAY_PROFILES]
HOSTS = [f"127.0.0.{2 + i}" for i in range(len(NAMES))]


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("geoip")
    placed, why_not = placements(HOSTS, NAMES, own_hosts=True)
    assert why_not is None
    city_db, asn_db = folder / "demo-city.mmdb", folder / "demo-asn.mmdb"
    write_databases(city_db, asn_db, placed)
    return city_db, asn_db, placed


def test_every_relay_has_a_place_in_a_country_of_its_own():
    assert set(PLACES) == set(NAMES)
    assert len({place.country_code for place in PLACES.values()}) == len(NAMES)
    for place in PLACES.values():
        assert 64512 <= place.asn <= 65534  # private use (RFC 6996): no real network's
        assert "demo" in place.as_organization.lower()


def test_the_demo_database_places_each_address_where_the_demo_says(databases):
    city_db, asn_db, placed = databases
    assert list(placed) == HOSTS
    with GeoLocator(city_db, asn_db) as locator:
        for host, name in zip(HOSTS, NAMES, strict=True):
            place, row = PLACES[name], locator.locate(host)
            assert placed[host] == place
            assert (row.country_code, row.country_name, row.city) == (
                place.country_code,
                place.country_name,
                place.city,
            )
            assert (row.latitude, row.longitude) == (place.latitude, place.longitude)
            assert (row.asn, row.as_organization) == (place.asn, place.as_organization)
            # as a dual-stack socket reports the peer
            assert locator.locate(f"::ffff:{host}").country_code == place.country_code
        assert "Demo" in (locator.city_db_edition or "") and "invented" in (
            locator.city_db_edition or ""
        )
        assert "Demo" in (locator.asn_db_edition or "")
        for elsewhere in ("127.0.0.1", "127.0.0.6", "203.0.113.7"):
            row = locator.locate(elsewhere)
            assert row.country_code is None and row.asn is None, elsewhere


def test_no_database_when_the_relays_share_an_address_or_the_writer_is_missing(monkeypatch):
    placed, why_not = placements(["127.0.0.1"] * 4, NAMES, own_hosts=False)
    assert placed == {} and why_not is not None and "127.0.0.1" in why_not
    monkeypatch.setattr(geoip, "writer_installed", lambda: False)
    placed, why_not = placements(HOSTS, NAMES, own_hosts=True)
    assert placed == {} and why_not is not None and "mmdb-writer" in why_not


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux routes 127/8 to lo")
def test_relays_get_loopback_addresses_of_their_own():
    addresses, own = relay_addresses(4)
    assert own
    assert [host for host, _ in addresses] == HOSTS
    for host, port in addresses:  # free, on that address
        with socket.socket() as sock:
            sock.bind((host, port))


def test_all_on_127_0_0_1_where_no_other_address_can_be_bound(monkeypatch):
    bind = relays.free_ports

    def only_127_0_0_1(hosts):
        if any(host != "127.0.0.1" for host in hosts):
            raise OSError(99, "Cannot assign requested address")
        return bind(hosts)

    monkeypatch.setattr(relays, "free_ports", only_127_0_0_1)
    addresses, own = relay_addresses(4)
    assert not own
    assert {host for host, _ in addresses} == {"127.0.0.1"}
    assert len({port for _, port in addresses}) == 4


def test_the_relay_config_names_its_address(tmp_path):
    spec = RelaySpec("hub", 41001, 500, {"relay_name": "hub"}, [], host="127.0.0.3")
    config = config_text(tmp_path, spec)
    # `serve --use-uvicorn` takes only the port from `bind`, the address from `host`
    assert "  bind: 127.0.0.3:41001\n" in config and "  host: 127.0.0.3\n" in config
    assert spec.url == "ws://127.0.0.3:41001"


PAGE = (
    "<!doctype html><html><head><title>t</title></head><body><header><h1>D</h1></header><main>"
    '<section class="panel" id="panel-events"><h2>Events</h2></section>'
    '<section class="panel wide" id="panel-relay_map"><h2>Where reachable relays are</h2>'
    '<p class="question">Q</p></section></main></body></html>\n'
)


def test_the_dashboard_page_says_the_locations_are_invented(tmp_path, databases):
    _, _, placed = databases
    page = tmp_path / "network.html"
    assert not mark_dashboard(page, placed)
    page.write_text(PAGE)
    assert mark_dashboard(page, placed)
    assert mark_dashboard(page, placed)  # once only
    html = page.read_text()
    assert html.count(geoip.NOTICE_ID) == 1
    notice_at = html.index(geoip.NOTICE_ID)
    assert html.index("Where reachable relays are</h2>") < notice_at < html.index("question")
    notice = html[notice_at : html.index("</p>", notice_at)]
    assert "invented" in notice
    for host, place in placed.items():
        assert host in notice and place.city in notice
    assert sorted(p.name for p in tmp_path.iterdir()) == ["network.html"]


def test_a_page_without_a_map_gets_the_notice_at_the_top(tmp_path, databases):
    _, _, placed = databases
    page = tmp_path / "network.html"
    page.write_text("<html><body><main></main></body></html>")
    assert mark_dashboard(page, placed)
    assert page.read_text().startswith(f'<html><body><p class="warnings" id="{geoip.NOTICE_ID}"')
