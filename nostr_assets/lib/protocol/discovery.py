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
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from nostr_assets.lib.failures import UrlRefusal
from nostr_assets.lib.protocol.event import Event
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, normalize_relay_url

# Lower number wins.
SOURCE_PRIORITY = {"nip65": 0, "contacts": 1, "hint": 2}
KIND_CONTACTS = 3
KIND_RELAY_LIST = 10002
_HINT_TAGS = frozenset({"e", "p"})
# The refusal counted for URLs past an event's share (NOSTR_CATALOG_URLS_PER_EVENT).
OVER_EVENT_LIMIT = UrlRefusal.OVER_EVENT_LIMIT


@dataclass
class Discovery:
    """Normalised relay URL -> its best source, the authors who named it, and how many
    candidate URLs were refused why."""

    urls: dict[str, str] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    authors: dict[str, set[str]] = field(default_factory=dict)

    def add(self, url: object, source: str, author: str = "") -> None:
        """Offer one candidate URL seen under ``source`` in an event by ``author``."""
        try:
            canonical = normalize_relay_url(url)  # type: ignore[arg-type]
        except InvalidRelayUrl as exc:
            self.rejected[exc.reason] += 1
            return
        known = self.urls.get(canonical)
        if known is None or SOURCE_PRIORITY[source] < SOURCE_PRIORITY[known]:
            self.urls[canonical] = source
        self.authors.setdefault(canonical, set()).add(author)

    def best_new(self, known: Collection[str], limit: int) -> tuple[dict[str, str], int]:
        """At most ``limit`` URLs not in ``known`` (url -> source), the best attested first:
        the most deliberate source, then the most distinct authors, then the URL. Returns them
        and how many new URLs were left for later."""
        new = [url for url in self.urls if url not in known]
        new.sort(key=lambda u: (SOURCE_PRIORITY[self.urls[u]], -len(self.authors[u]), u))
        return {url: self.urls[url] for url in new[:limit]}, max(0, len(new) - limit)


def _contact_relays(content: str) -> list[str]:
    """The keys of a kind-3 relay map; most kind-3 events have empty content, and that is fine."""
    if not content.strip():
        return []
    try:
        relays = json.loads(content)
    except (ValueError, RecursionError):
        return []
    return list(relays) if isinstance(relays, dict) else []


def _candidates(event: Event) -> Iterator[tuple[object, str]]:
    """(url, source) for each relay URL ``event`` names, in the order it names them."""
    if event.kind == KIND_RELAY_LIST:
        for tag in event.tags:
            if len(tag) >= 2 and tag[0] == "r":
                yield tag[1], "nip65"
    elif event.kind == KIND_CONTACTS:
        for url in _contact_relays(event.content):
            yield url, "contacts"
    for tag in event.tags:
        # An empty hint means "no hint", not a bad URL: most clients write "".
        if len(tag) >= 3 and tag[0] in _HINT_TAGS and tag[2].strip():
            yield tag[2], "hint"


def discover_relays(
    events: Iterable[Event], into: Discovery | None = None, max_per_event: int | None = None
) -> Discovery:
    """Collect relay URLs from ``events``; pass ``into`` to accumulate over several batches.

    ``max_per_event`` bounds what one event can contribute (its first URLs): a signed event
    costs its author nothing, and one with 20,000 hints must not grow the crawl by 20,000
    relays. The URLs past it are counted as ``over_event_limit``, not normalised.
    """
    found = into if into is not None else Discovery()
    for event in events:
        for n, (url, source) in enumerate(_candidates(event)):
            if max_per_event is not None and n >= max_per_event:
                found.rejected[OVER_EVENT_LIMIT] += 1
            else:
                found.add(url, source, event.pubkey)
    return found
