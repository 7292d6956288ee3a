"""Protects relay discovery from events: NIP-65 lists, kind-3 relay maps and tag hints.

Each URL must come out normalised, once, under its most deliberate source whatever the event
order, and every refused URL must be counted by reason instead of vanishing.
"""

from __future__ import annotations

import json
from collections import Counter

from nostr_assets.lib.protocol.discovery import Discovery, discover_relays
from nostr_assets.lib.protocol.event import sign_event

KEY = (7).to_bytes(32, "big")
T0 = 1_704_067_200
PK = "a" * 64
EID = "b" * 64


def ev(kind: int, tags: list[list[str]], content: str = ""):
    return sign_event(KEY, T0, kind, tags, content, bytes(32))


def relay_list(*urls: str):
    return ev(10002, [["r", u] for u in urls])


def test_three_sources() -> None:
    events = [
        relay_list("wss://Relay.One.com/", "wss://two.example:443"),
        ev(3, [["p", PK, "wss://hinted.example"]], json.dumps({"wss://contacts.example": {}})),
        ev(1, [["e", EID, "ws://event-hint.example:80/"], ["p", PK, "wss://p-hint.example"]]),
    ]
    found = discover_relays(events)
    assert found.urls == {
        "wss://relay.one.com": "nip65",
        "wss://two.example": "nip65",
        "wss://contacts.example": "contacts",
        "wss://hinted.example": "hint",
        "ws://event-hint.example": "hint",
        "wss://p-hint.example": "hint",
    }
    assert found.rejected == Counter()


def test_priority_does_not_depend_on_order() -> None:
    url = "wss://relay.example.com"
    events = [
        ev(1, [["e", EID, url + "/"]]),
        ev(3, [], json.dumps({"WSS://RELAY.EXAMPLE.COM": {"read": True}})),
        relay_list(url + ":443"),
        ev(1, [["p", PK, url]]),
    ]
    assert discover_relays(events).urls == {url: "nip65"}
    assert discover_relays(reversed(events)).urls == {url: "nip65"}
    assert discover_relays(events[:2]).urls == {url: "contacts"}
    assert discover_relays(events[:1]).urls == {url: "hint"}


def test_invalid_urls_are_counted_by_reason() -> None:
    events = [
        relay_list(
            "https://relay.example.com", "wss://u:p@relay.example.com", "", "wss://ok.example"
        ),
        ev(3, [], json.dumps({"wss://relay.example.com:99999": {}, "not a url": {}})),
        ev(1, [["e", EID, "http://hint.example"], ["p", PK, ""], ["p", PK, "  "]]),
    ]
    found = discover_relays(events)
    assert found.urls == {"wss://ok.example": "nip65"}
    assert found.rejected == Counter(
        {"bad_scheme": 2, "has_credentials": 1, "empty": 1, "bad_port": 1, "bad_characters": 1}
    )


def test_ignored_shapes() -> None:
    events = [
        ev(10002, [["r"], ["relay", "wss://not-an-r-tag.example"], ["R", "wss://upper.example"]]),
        ev(3, [], "not json"),
        ev(3, [], json.dumps(["wss://list-not-object.example"])),
        ev(3, [], "[" * 50_000),  # deep enough to exhaust the recursion limit
        ev(3, [], ""),
        ev(1, [["e", EID], ["t", "x", "wss://t-tag.example"], ["r", "wss://r-in-kind-1.example"]]),
    ]
    found = discover_relays(events)
    assert found.urls == {}
    assert found.rejected == Counter()


def test_read_write_markers_and_accumulation() -> None:
    found = Discovery()
    discover_relays([ev(10002, [["r", "wss://a.example", "read"]])], into=found)
    discover_relays([ev(10002, [["r", "wss://b.example", "write"]])], into=found)
    discover_relays([ev(1, [["p", PK, "wss://a.example"], ["p", PK, "ftp://x"]])], into=found)
    assert found.urls == {"wss://a.example": "nip65", "wss://b.example": "nip65"}
    assert found.rejected == Counter({"bad_scheme": 1})
