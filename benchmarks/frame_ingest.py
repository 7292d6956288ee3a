"""The hot path from raw relay frames to unique verified events and sightings, in one process.

``FrameIngestor`` feeds frames into an ``IngestState``. Bad data is counted per reason, never
raised. Spreading the same work over processes is ``parallel_ingest.ParallelFrameIngestor``
(still importable from here), which runs this ingestor in each worker.

Where the time goes (2-core machine, 50k events seen on three relays): BIP-340 verification is
about 29 µs per unique event and cannot shrink; everything else must fit around it. So:

- a frame whose event text is byte-identical to a copy that already verified is a sighting
  after a regex and a memcmp, without parsing it again (relays that store the original JSON
  serve identical bytes; the others still take the parsing path below);
- other ``["EVENT", sub, {...}]`` frames are decoded in one msgspec pass into a typed tuple
  whose constraints are at least as strict as ``event.decode_event``; any failure falls back
  to ``messages.decode_relay_message`` + ``decode_event`` so the refusal reason stays exact;
- the garbage collector is paused while a batch is fed (``feed_many``): kind-3 contact lists
  hold hundreds of lists each, and with the collector running they parsed 4x slower.
"""

from __future__ import annotations

import gc
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from nostr_assets.lib.protocol.event import Event, InvalidEvent, decode_event
from nostr_assets.lib.protocol.ingest import IngestState
from nostr_assets.lib.protocol.messages import (
    BadFrame,
    EventMessage,
    decode_event_frame,
    decode_relay_message,
)

# `["EVENT","<printable ASCII without quote or backslash>",` : a subscription id that is valid
# JSON as it stands, so a known event text after it makes the whole frame valid JSON.
SIMPLE_HEAD = re.compile(rb'\["EVENT","[\x20\x21\x23-\x5b\x5d-\x7e]*",')
# Inside a JSON string every quote is escaped, so `"id":"<hex>"` can only be an object key:
# the event's own id (or an unknown field's nested object, which only costs a wasted lookup).
# Both patterns are shared with parallel_ingest, which routes frames by the claimed id.
CLAIMED_ID = re.compile(rb'"id"\s*:\s*"([0-9a-f]{64})"')
# Known texts kept per id: a relay that re-serializes gives a second variant; no more, so a
# hostile relay cannot grow the list with whitespace variants.
_MAX_VARIANTS = 2


@contextmanager
def gc_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector (events hold no cycles), restoring its state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class IngestResult:
    """Unique verified events, sightings, and refusals counted by reason."""

    events: dict[str, Event] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)
    sightings: dict[tuple[str, str], float] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)  # event refusals (REJECT_REASONS)
    bad_frames: Counter[str] = field(default_factory=Counter)  # frame refusals (BAD_FRAME_REASONS)


class FrameIngestor:
    """Raw frames from relays into an ``IngestState``; other message types are ignored."""

    def __init__(
        self,
        state: IngestState | None = None,
        *,
        max_frame_bytes: int | None = None,
        remember_texts: bool = True,
    ) -> None:
        self.state = state if state is not None else IngestState()
        # One counter for every event refusal: decoding reasons here, verification in the state.
        self.rejected: Counter[str] = self.state.rejected
        self.bad_frames: Counter[str] = Counter()
        self._max_frame_bytes = max_frame_bytes
        # Claimed id (ASCII bytes) -> ((event text, verified Event), ...). Costs about the size
        # of the texts in memory; saves reparsing every further identical copy.
        self._known: dict[bytes, tuple[tuple[bytes, Event], ...]] | None = (
            {} if remember_texts else None
        )

    def feed(self, relay_url: str, frame: bytes | str, seen_at: float) -> None:
        """Take one frame as received from ``relay_url`` at ``seen_at`` (epoch seconds)."""
        if type(frame) is not bytes:
            try:
                frame = frame.encode() if isinstance(frame, str) else bytes(frame)
            except UnicodeEncodeError:  # a lone surrogate: let the precise path name it
                self._precise(relay_url, frame, seen_at)
                return
        if self._max_frame_bytes is not None and len(frame) > self._max_frame_bytes:
            self._precise(relay_url, frame, seen_at)
            return
        known = self._known
        key = variants = None
        head = SIMPLE_HEAD.match(frame)
        if head is not None and known is not None and frame[-1] == 93:  # ends with "]"
            start = head.end()
            claimed = CLAIMED_ID.search(frame, start)
            if claimed is not None:
                key = claimed.group(1)
                variants = known.get(key)
                if variants is not None:
                    size = len(frame) - start - 1
                    for text, event in variants:
                        if len(text) == size and frame.startswith(text, start):
                            self.state.accept(relay_url, event, seen_at)
                            return
        decoded = decode_event_frame(frame)
        if decoded is None:  # anything odd takes the precise path, which names the reason
            self._precise(relay_url, frame, seen_at)
            return
        event = decoded[1]
        state = self.state
        # `key` came from a regex and might name a nested object's id: hence the last check.
        if (
            state.accept(relay_url, event, seen_at) is None
            and key is not None
            and (variants is None or len(variants) < _MAX_VARIANTS)
            and key == event.id.encode()
        ):
            text = frame[head.end() : -1]
            known[key] = (*(variants or ()), (text, state.events[event.id]))

    def _precise(self, relay_url: str, frame: bytes | str, seen_at: float) -> None:
        """The generic decoders, for anything the fast path refused: exact reason codes."""
        try:
            message = decode_relay_message(frame, self._max_frame_bytes)
        except BadFrame as error:
            self.bad_frames[error.reason] += 1
            return
        if type(message) is not EventMessage:
            return
        try:
            event = decode_event(message.event_json)
        except InvalidEvent as error:
            self.rejected[error.reason] += 1
            return
        self.state.accept(relay_url, event, seen_at)

    def feed_many(self, frames: Iterable[tuple[str, bytes | str, float]]) -> None:
        """``feed`` each ``(relay_url, frame, seen_at)`` with the garbage collector paused."""
        feed = self.feed
        with gc_paused():
            for relay_url, frame, seen_at in frames:
                feed(relay_url, frame, seen_at)

    def result(self) -> IngestResult:
        """The state's own containers (not copies)."""
        state = self.state
        return IngestResult(
            state.events, state.first_seen, state.sightings, state.rejected, self.bad_frames
        )
