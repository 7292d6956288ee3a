"""A deterministic, signed Nostr event set for the end-to-end test: three hours of a small world.

Every expected number in ``test_end_to_end.py`` is worked out by hand from the table below, so the
table is the single description of the world. Keys are fixed (sha256 of a name), signatures use a
zero ``aux_rand``: the same ids on every run and every machine.

Range: 2024-02-01 00:00:00Z (T = 1706745600) to 03:00:00Z, end exclusive (three hourly partitions).

 #  label                    kind   author  created_at   on    notes
 -- hour 0 (00:00-00:59:59) ----------------------------------------------------------------------
 1  alice_profile_v1          0     alice   T+0          Y     first second of the range; older
 2  bob_profile               0     bob     T+60         X
 3  alice_note                1     alice   T+100        XY    the most reacted note
 4  bob_note                  1     bob     T+200        XY
 5  carol_contacts_v1         3     carol   T+300        Y     p alice (empty relay hint), p bob
 6  bob_likes_alice           7     bob     T+400        XY    e #3, p alice
 7  carol_likes_alice         7     carol   T+500        XY    e #4 (thread root), e #3: target #3
 8  alice_article_v1      30023     alice   T+600        XY    d=intro, published_at 01-31 12:00
 9  dave_note                 1     dave    T+700        X
10  zap_bob_to_alice       9735     zapper  T+900        XY    lnbc2500u = 250000 sats, e #3
11  gift_wrap_1            1059     wrap1   T+1000       X     one-time key
12  alice_note_deleted        1     alice   T+3599       XY    last second of hour 0; deleted by #15
 -- hour 1 (01:00-01:59:59) ----------------------------------------------------------------------
13  alice_profile_v2          0     alice   T+3600       XY    first second of hour 1; current
14  carol_contacts_v2         3     carol   T+3700       XY    current
15  alice_deletes_note        5     alice   T+4000       XY    e #12: valid (same author)
16  bob_deletes_alice_note    5     bob     T+4100       XY    e #3: invalid (not bob's note)
17  alice_article_v2      30023     alice   T+4200       XY    d=intro edited, same published_at
18  bob_article           30023     bob     T+4300       XY    d=bob-post, no published_at
19  dave_likes_bob            7     dave    T+4400       Y     e #4
20  dave_likes_deleted        7     dave    T+4500       XY    e #12 (a deleted note)
21  zap_carol_to_bob       9735     zapper  T+4600       X     lnbc10n = 1 sat, e #4
22  carol_draft           30023     carol   T+4800       XY    d=carol-draft; deleted by #31
23  gift_wrap_2            1059     wrap2   T+5000       XY    one-time key
24  alice_relays          10002     alice   T+5400       XY    r ws://127.0.0.1:9, r https://... *
 -- hour 2 (02:00-02:59:59) ----------------------------------------------------------------------
25  dave_note_2               1     dave    T+7200       XY    first second of hour 2
26  zap_dave_no_amount     9735     zapper  T+7300       XY    lnbc1... (no amount), to alice
27  zap_bob_to_dave_pico   9735     zapper  T+7350       XY    lnbc25000p = 2.5 sats
28  carol_note                1     carol   T+7400       Y
29  bob_likes_dave            7     bob     T+7500       XY    e #25
30  bob_likes_alice_again     7     bob     T+7600       XY    e #3 (second reaction, same reactor)
31  carol_deletes_draft       5     carol   T+7700       XY    a 30023:carol:carol-draft: valid
32  gift_wrap_3            1059     wrap3   T+10799      X     last second of the range
 -- after the range ------------------------------------------------------------------------------
33  after_range               1     alice   T+10800      XY    first second after: never fetched

* The relay list names ``ws://127.0.0.1:9`` (the discard port: nothing listens), so the catalog
  discovers a dead relay from a stored event, and ``https://...`` which is refused (not ws/wss).

Relay holdings (relay X and relay Y, overlapping):
- only on X: #2, #9, #11, #21, #32 (5 events);
- only on Y: #1, #5, #19, #28 (4 events);
- on both: the other 23 of the 32 in-range events, and #33 (outside the range).
So in the range X holds 28 events, Y holds 27; 9 events sit on one relay and 23 on two.

The real relay applies NIP-09 deletions, replaceable (0, 3, 10000-19999) and addressable
(30000-39999) replacement when it stores an event, but only against events it already holds and
only when the new one is newer. ``relay_load_order`` therefore lists each relay's events newest
first: a deletion arrives before its target and a newer version before the older one, so the
relay keeps every event of the table and serves it, and the warehouse, not the relay, decides
what is current and what is deleted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from nostr_assets.lib.protocol.event import Event, encode_event, sign_event

T = 1_706_745_600  # 2024-02-01T00:00:00Z
HOUR = 3600
RANGE_START = T
RANGE_END = T + 3 * HOUR  # exclusive
PUBLISHED_AT = T - 12 * HOUR  # 2024-01-31T12:00:00Z: alice first published "intro" elsewhere
DEAD_RELAY = "ws://127.0.0.1:9"
REFUSED_RELAY = "https://relay.example.com"
_AUX = bytes(32)

NAMES = ("alice", "bob", "carol", "dave", "zapper", "wrap1", "wrap2", "wrap3")


def secret_key(name: str) -> bytes:
    """A fixed secret key per name (a sha256 digest is a valid secp256k1 key but for ~2^-128)."""
    return hashlib.sha256(f"nostr-analytics rich events/{name}".encode()).digest()


def _pubkey(name: str) -> str:
    return sign_event(secret_key(name), 0, 1, [], "", _AUX).pubkey


PUBKEYS: dict[str, str] = {name: _pubkey(name) for name in NAMES}
GIFT_WRAP_KEYS = ("wrap1", "wrap2", "wrap3")  # one-time keys, one per gift wrap

# A no-amount invoice: its human-readable part is just "lnbc" (the data part, in bech32, never
# contains "1"). The data strings below are bech32 characters only, so the last "1" is the
# separator the amount parser must find.
_DATA = "pvjluezpp5qqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4js"
BOLT11 = {
    "zap_bob_to_alice": f"lnbc2500u1{_DATA}",  # 2500 * 100 sats = 250000 sats
    "zap_carol_to_bob": f"lnbc10n1{_DATA}",  # 10 * 0.1 sats = 1 sat
    "zap_dave_no_amount": f"lnbc1{_DATA}",  # no amount
    "zap_bob_to_dave_pico": f"lnbc25000p1{_DATA}",  # 25000 * 0.0001 sats = 2.5 sats
}


@dataclass(frozen=True)
class Fixture:
    """The signed events by label, and which relay holds which label."""

    events: dict[str, Event]
    on_x: frozenset[str]
    on_y: frozenset[str]
    labels: list[str] = field(default_factory=list)  # table order

    def id(self, label: str) -> str:
        return self.events[label].id

    def in_range(self) -> list[str]:
        return [
            label
            for label in self.labels
            if RANGE_START <= self.events[label].created_at < RANGE_END
        ]

    def relay_load_order(self, relay: str) -> list[Event]:
        """The events relay "X" or "Y" holds, newest first (see the module docstring)."""
        held = self.on_x if relay == "X" else self.on_y
        events = [self.events[label] for label in self.labels if label in held]
        return sorted(events, key=lambda e: e.created_at, reverse=True)


def build_fixture() -> Fixture:
    events: dict[str, Event] = {}
    holders: dict[str, str] = {}

    def add(
        label: str,
        author: str,
        offset: int,
        kind: int,
        tags: list[list[str]],
        content: str = "",
        on: str = "XY",
    ) -> None:
        events[label] = sign_event(secret_key(author), T + offset, kind, tags, content, _AUX)
        holders[label] = on

    def e(label: str) -> list[str]:
        return ["e", events[label].id]

    def p(name: str) -> list[str]:
        return ["p", PUBKEYS[name]]

    def zap(
        label: str, offset: int, sender: str, recipient: str, note: str | None, on: str = "XY"
    ) -> None:
        request_tags = [p(recipient)]
        if note is not None:
            request_tags.append(e(note))
        # The zap request (kind 9734) is signed by the sender; the receipt carries it as JSON.
        request = sign_event(secret_key(sender), T + offset - 5, 9734, request_tags, "", _AUX)
        tags = [
            p(recipient),
            *([e(note)] if note else []),
            ["bolt11", BOLT11[label]],
            ["description", encode_event(request).decode()],
        ]
        add(label, "zapper", offset, 9735, tags, "", on)

    def gift_wrap(label: str, key: str, offset: int, recipient: str, on: str) -> None:
        sealed = hashlib.sha256(label.encode()).hexdigest() * 4  # opaque to everyone but bob
        add(label, key, offset, 1059, [p(recipient)], sealed, on)

    profile = json.dumps
    # hour 0
    add("alice_profile_v1", "alice", 0, 0, [], profile({"name": "alice"}), on="Y")
    add("bob_profile", "bob", 60, 0, [], profile({"name": "bob"}), on="X")
    add("alice_note", "alice", 100, 1, [], "hello nostr")
    add("bob_note", "bob", 200, 1, [], "gm")
    add("carol_contacts_v1", "carol", 300, 3, [["p", PUBKEYS["alice"], ""], p("bob")], on="Y")
    add("bob_likes_alice", "bob", 400, 7, [e("alice_note"), p("alice")], "+")
    add("carol_likes_alice", "carol", 500, 7, [e("bob_note"), e("alice_note"), p("alice")], "+")
    add(
        "alice_article_v1",
        "alice",
        600,
        30023,
        [["d", "intro"], ["title", "Intro"], ["published_at", str(PUBLISHED_AT)]],
        "# Intro",
    )
    add("dave_note", "dave", 700, 1, [], "hi all", on="X")
    zap("zap_bob_to_alice", 900, "bob", "alice", "alice_note")
    gift_wrap("gift_wrap_1", "wrap1", 1000, "bob", on="X")
    add("alice_note_deleted", "alice", HOUR - 1, 1, [], "oops")
    # hour 1
    add("alice_profile_v2", "alice", HOUR, 0, [], profile({"name": "alice", "about": "v2"}))
    add("carol_contacts_v2", "carol", HOUR + 100, 3, [p("alice"), p("bob"), p("dave")])
    add("alice_deletes_note", "alice", HOUR + 400, 5, [e("alice_note_deleted")], "typo")
    add("bob_deletes_alice_note", "bob", HOUR + 500, 5, [e("alice_note")], "not mine")
    add(
        "alice_article_v2",
        "alice",
        HOUR + 600,
        30023,
        [["d", "intro"], ["title", "Intro (edited)"], ["published_at", str(PUBLISHED_AT)]],
        "# Intro, edited",
    )
    add("bob_article", "bob", HOUR + 700, 30023, [["d", "bob-post"]], "# Bob writes")
    add("dave_likes_bob", "dave", HOUR + 800, 7, [e("bob_note"), p("bob")], "+", on="Y")
    add("dave_likes_deleted", "dave", HOUR + 900, 7, [e("alice_note_deleted"), p("alice")], "+")
    zap("zap_carol_to_bob", HOUR + 1000, "carol", "bob", "bob_note", on="X")
    add("carol_draft", "carol", HOUR + 1200, 30023, [["d", "carol-draft"]], "# Draft")
    gift_wrap("gift_wrap_2", "wrap2", HOUR + 1400, "bob", on="XY")
    add(
        "alice_relays",
        "alice",
        HOUR + 1800,
        10002,
        [["r", DEAD_RELAY], ["r", REFUSED_RELAY, "write"]],
    )
    # hour 2
    add("dave_note_2", "dave", 2 * HOUR, 1, [], "second note")
    zap("zap_dave_no_amount", 2 * HOUR + 100, "dave", "alice", None)
    zap("zap_bob_to_dave_pico", 2 * HOUR + 150, "bob", "dave", "dave_note_2")
    add("carol_note", "carol", 2 * HOUR + 200, 1, [], "hello from carol", on="Y")
    add("bob_likes_dave", "bob", 2 * HOUR + 300, 7, [e("dave_note_2"), p("dave")], "+")
    add("bob_likes_alice_again", "bob", 2 * HOUR + 400, 7, [e("alice_note"), p("alice")], "🤙")
    add(
        "carol_deletes_draft",
        "carol",
        2 * HOUR + 500,
        5,
        [["a", f"30023:{PUBKEYS['carol']}:carol-draft"], ["k", "30023"]],
    )
    gift_wrap("gift_wrap_3", "wrap3", 3 * HOUR - 1, "bob", on="X")
    # after the range
    add("after_range", "alice", 3 * HOUR, 1, [], "too late for this window")

    return Fixture(
        events=events,
        on_x=frozenset(label for label, on in holders.items() if "X" in on),
        on_y=frozenset(label for label, on in holders.items() if "Y" in on),
        labels=list(events),
    )
