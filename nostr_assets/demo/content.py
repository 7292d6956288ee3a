"""The words, names, profiles and contact lists of synthetic Nostr events, drawn from a seeded
``random.Random``: the demo network and the benchmarks (benchmarks/synthetic.py,
benchmarks/relay_farm.py) write their events with them.

Text mixes scripts, emoji and characters that JSON must escape, so parsing and canonical
serialization meet what they meet on the wire. Every function draws from the ``rng`` it is
given and from nothing else: the same seed gives the same text, and the benchmarks' cached
event sets stay valid (their generator versions pin the order of the draws made here).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

WORDS = " ".join(
    (
        "gm nostr bitcoin relay zap note freedom sats lightning pleb coffee builder ser wagmi",
        "hola mundo buenos días gracias café señor niño año pequeño",
        "こんにちは 世界 ありがとう 日本語 ノストル おはよう",
        "привет мир спасибо Ёлка",
        "مرحبا سلام שלום Grüße Straße naïve façade smörgåsbord",
        "🤙 ⚡ 🔥 💜 🫂 😂 🚀 🧡 👀 🌍 🍕 🇧🇷 👩\u200d💻 ❤️",
    )
).split()
# Characters NIP-01 serialization escapes (or deliberately does not): they must round-trip.
ODD = ('"quoted"', "back\\slash", "tab\there", "line\nbreak", "cr\r", "</script>", "\u2028")
# Real relay URLs, for the benchmarks' offline events. The demo passes its own relays instead:
# its events are crawled, and a URL they name may enter the catalog and be contacted.
RELAYS = (
    "wss://relay.damus.io",
    "wss://nos.lol",
    "wss://relay.nostr.band",
    "wss://nostr.wine",
    "wss://relay.primal.net",
    "wss://purplepag.es",
    "wss://relay.snort.social",
)
REACTIONS = ("+", "+", "+", "🤙", "❤️", "🔥", "😂", "⚡", "-", "🫂")
NAMES = ("satoshi", "alice", "bob", "ナカモト", "josé", "Мария", "ana_ñ", "🐸frog", "zapper")


def text(rng: random.Random, low: int, high: int) -> str:
    """Words of several scripts, now and then a character NIP-01 escapes or a link."""
    words = rng.choices(WORDS, k=rng.randint(low, high))
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words) + 1), rng.choice(ODD))
    if rng.random() < 0.2:
        words.append(f"https://example.com/{rng.getrandbits(40):x}.jpg")
    return " ".join(words)


def contact_list(
    rng: random.Random, other: Callable[[], str], relays: Sequence[str] = RELAYS
) -> tuple[list[list[str]], str]:
    """Tags and content of a kind-3 contact list following keys drawn by ``other``, with
    relay hints and the legacy relay map naming ``relays`` (at least three)."""
    # Real follow lists: median in the low hundreds, a long tail past a thousand.
    count = max(1, min(int(rng.lognormvariate(5.4, 0.7)), 2000))
    tags = []
    for _ in range(count):
        tag = ["p", other()]
        if rng.random() < 0.25:
            tag.append(rng.choice(relays))
            if rng.random() < 0.3:
                tag.append(rng.choice(NAMES))
        tags.append(tag)
    content = ""
    if rng.random() < 0.4:  # the legacy relay map some clients still write
        chosen = rng.sample(relays, 3)
        content = json.dumps({r: {"read": True, "write": rng.random() < 0.7} for r in chosen})
    return tags, content


def profile(rng: random.Random) -> str:
    """The content of a kind-0 profile."""
    name = rng.choice(NAMES)
    meta = {
        "name": name,
        "display_name": f"{name} {rng.choice(WORDS)}",
        "about": text(rng, 5, 40),
        "picture": f"https://example.com/avatar/{rng.getrandbits(48):x}.png",
        "nip05": f"{name}@example.com",
        "lud16": f"{name}@getalby.com",
    }
    return json.dumps(meta, ensure_ascii=False)
