"""Tags and content of the event kinds the demo network holds beyond notes and reactions:
zap receipts with real BOLT-11 amounts, long-form articles, and NIP-66 monitor reports.

Pure functions of their arguments and of the ``rng`` they are given; no I/O, no clock.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from nostr_assets.demo.content import text
from nostr_assets.lib.protocol.event import Event, encode_event

# bech32's 32 characters: no `1`, `b`, `i` or `o`, so an invoice's data part never holds the
# `1` that ends its human-readable part (int_zap_receipts.sql splits there).
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
# Sats per unit of each BOLT-11 multiplier (1 BTC = 1e8 sats): milli, micro; nano below.
_MULTIPLIERS = (("m", 100_000), ("u", 100))
# What zappers send: 21 sats above all, round numbers, a rare large one.
ZAP_SATS = (21, 21, 21, 21, 69, 100, 210, 500, 1000, 1000, 2100, 5000, 10_000, 21_000, 100_000)

# nostr-relay 1.14 serves this document shape (web.py) and lists these NIPs when auth (42) and
# full-text search (50) are off, as in the demo's configuration.
NOSTR_RELAY_SOFTWARE = "https://code.pobblelabs.org/fossil/nostr_relay"
NOSTR_RELAY_VERSION = "1.14"
NOSTR_RELAY_NIPS = (1, 2, 5, 9, 11, 12, 15, 20, 26, 33, 40)


def bolt11_amount(sats: int) -> str:
    """The amount of a BOLT-11 human-readable part, in the largest unit that states it
    exactly: 100 sats is ``1u``, 100,000 sats ``1m``, 21 sats ``210n``."""
    for unit, sats_per_unit in _MULTIPLIERS:
        if sats % sats_per_unit == 0:
            return f"{sats // sats_per_unit}{unit}"
    return f"{sats * 10}n"


def bolt11(rng: random.Random, sats: int) -> str:
    """A mainnet invoice for ``sats``: its amount is real, its data part random bech32 (the
    payment hash and signature inside it are not checked by anything downstream)."""
    return f"lnbc{bolt11_amount(sats)}1p" + "".join(rng.choices(BECH32, k=rng.randint(180, 260)))


def zap_request_tags(
    relays: Sequence[str], sats: int, recipient: str, note_id: str | None
) -> list[list[str]]:
    """A NIP-57 zap request (kind 9734): where the receipt goes, the amount in msat, whom."""
    tags = [["relays", *relays], ["amount", str(sats * 1000)], ["p", recipient]]
    if note_id is not None:
        tags.append(["e", note_id])
    return tags


def zap_receipt_tags(
    rng: random.Random, request: Event, sats: int, recipient: str, note_id: str | None
) -> list[list[str]]:
    """A NIP-57 zap receipt (kind 9735), as the recipient's LNURL server publishes it: the
    invoice it paid, and the signed request in `description`."""
    tags = [["p", recipient]]
    if note_id is not None:
        tags.append(["e", note_id])
    tags += [
        ["P", request.pubkey],
        ["bolt11", bolt11(rng, sats)],
        ["description", encode_event(request).decode()],
    ]
    if rng.random() < 0.7:
        tags.append(["preimage", f"{rng.getrandbits(256):064x}"])
    return tags


def article(
    rng: random.Random, slug: str, published_at: int, title: str | None = None
) -> tuple[list[list[str]], str, str]:
    """Tags, content and title of a NIP-23 long-form article (kind 30023); an edit passes
    the slug, first publication time and title of the version it replaces."""
    title = title or text(rng, 3, 8).replace("\n", " ")
    body = "\n\n".join(
        f"## {text(rng, 2, 5)}\n\n{text(rng, 60, 160)}" for _ in range(rng.randint(2, 5))
    )
    tags = [
        ["d", slug],
        ["title", title],
        ["summary", text(rng, 10, 25)],
        ["published_at", str(published_at)],
        *(["t", topic] for topic in rng.sample(("bitcoin", "nostr", "essay", "tech", "日本"), 2)),
    ]
    return tags, f"# {title}\n\n{body}", title


def nip11_document(name: str, description: str, operator: str, contact: str) -> dict:
    """The NIP-11 document a demo relay (nostr-relay) serves for its configuration."""
    return {
        "name": name,
        "description": description,
        "pubkey": operator,
        "contact": contact,
        "supported_nips": list(NOSTR_RELAY_NIPS),
        "software": NOSTR_RELAY_SOFTWARE,
        "version": NOSTR_RELAY_VERSION,
    }


def monitor_report(
    relay_url: str, document: dict, rtt_open_ms: int, rtt_read_ms: int
) -> tuple[list[list[str]], str]:
    """Tags and content of a NIP-66 relay discovery event (kind 30166): a monitor found the
    relay online, timed it, and kept its NIP-11 document (nip66.py reads what it says)."""
    tags = [
        ["d", relay_url],
        ["rtt-open", str(rtt_open_ms)],
        ["rtt-read", str(rtt_read_ms)],
        ["n", "clearnet"],
        *(["N", str(nip)] for nip in NOSTR_RELAY_NIPS),
        ["R", "!payment"],
        ["R", "!auth"],
    ]
    return tags, json.dumps(document, ensure_ascii=False, separators=(",", ":"))
