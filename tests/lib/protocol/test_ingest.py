"""``IngestState``: what it keeps of the events it verifies."""

from __future__ import annotations

from relays import SECRET_KEYS

from nostr_assets.lib.protocol.event import decode_event, encode_event, sign_event
from nostr_assets.lib.protocol.ingest import IngestState

FOLLOWED = [f"{i:064x}" for i in range(1, 201)]


def test_held_events_share_their_tag_values_and_pubkeys():
    # Two contact lists naming the same 200 keys, each decoded from its own frame, as a crawl
    # receives them: held, they point at one copy of each key.
    lists = [
        sign_event(SECRET_KEYS[0], 1_700_000_000 + i, 3, [["p", k] for k in FOLLOWED], "")
        for i in range(2)
    ]
    state = IngestState()
    for event in lists:
        assert state.accept("wss://relay.example", decode_event(encode_event(event)), 1.0) is None
    first, second = (state.events[e.id] for e in lists)
    assert first == lists[0] and second == lists[1]  # the same events, field for field
    assert all(a[1] is b[1] for a, b in zip(first.tags, second.tags, strict=True))
    assert first.pubkey is second.pubkey
