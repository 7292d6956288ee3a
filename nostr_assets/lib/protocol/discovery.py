"""Relay URLs found in events: where the catalogue learns about relays beyond the bootstrap list.

Three places name relays, from most to least deliberate:

* ``nip65``: kind 10002 relay lists, one ``["r", url, "read"|"write"?]`` tag per relay;
* ``contacts``: the legacy relay map that older clients put in kind-3 content, a JSON object
  whose keys are relay URLs (``{"wss://...": {"read": true, "write": true}}``);
* ``hint``: the third element of ``e`` and ``p`` tags, where a client says where it saw the
  referenced event or author.

A URL keeps the most deliberate source it was seen under, whatever the order of the events, so
the catalogue's ``source`` column does not depend on crawl order. Every URL goes through
``normalize_relay_url``; refusals are counted by reason rather than dropped silently, because a
jump in ``bad_scheme`` or ``has_credentials`` is worth seeing. The events should already be
verified: discovery trusts nothing but their structure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from nostr_assets.lib.protocol.event import Event
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, normalize_relay_url

# Lower number wins.
SOURCE_PRIORITY = {"nip65": 0, "contacts": 1, "hint": 2}
KIND_CONTACTS = 3
KIND_RELAY_LIST = 10002
_HINT_TAGS = frozenset({"e", "p"})


@dataclass
class Discovery:
    """Normalised relay URL -> its best source, and how many candidate URLs were refused why."""

    urls: dict[str, str] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, url: object, source: str) -> None:
        """Offer one candidate URL seen under ``source``."""
        try:
            canonical = normalize_relay_url(url)  # type: ignore[arg-type]
        except InvalidRelayUrl as exc:
            self.rejected[exc.reason] += 1
            return
        known = self.urls.get(canonical)
        if known is None or SOURCE_PRIORITY[source] < SOURCE_PRIORITY[known]:
            self.urls[canonical] = source


def _contact_relays(content: str) -> list[str]:
    """The keys of a kind-3 relay map; most kind-3 events have empty content, and that is fine."""
    if not content.strip():
        return []
    try:
        relays = json.loads(content)
    except (ValueError, RecursionError):
        return []
    return list(relays) if isinstance(relays, dict) else []


def discover_relays(events: Iterable[Event], into: Discovery | None = None) -> Discovery:
    """Collect relay URLs from ``events``; pass ``into`` to accumulate over several batches."""
    found = into if into is not None else Discovery()
    for event in events:
        if event.kind == KIND_RELAY_LIST:
            for tag in event.tags:
                if len(tag) >= 2 and tag[0] == "r":
                    found.add(tag[1], "nip65")
        elif event.kind == KIND_CONTACTS:
            for url in _contact_relays(event.content):
                found.add(url, "contacts")
        for tag in event.tags:
            # An empty hint means "no hint", not a bad URL: most clients write "".
            if len(tag) >= 3 and tag[0] in _HINT_TAGS and tag[2].strip():
                found.add(tag[2], "hint")
    return found
