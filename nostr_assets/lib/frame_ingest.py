"""The hot path from raw relay frames to unique verified events and sightings.

``FrameIngestor`` feeds one process's frames into an ``IngestState``; ``ParallelFrameIngestor``
shards frames by claimed event id over worker processes and merges their results, giving the
same events, sightings and counts. Bad data is counted per reason, never raised.

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
import multiprocessing
import queue
import re
import threading
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Literal

import msgspec

from nostr_assets.lib.event import MAX_CREATED_AT, MAX_KIND, Event, InvalidEvent, decode_event
from nostr_assets.lib.ingest import IngestState
from nostr_assets.lib.messages import BadFrame, EventMessage, decode_relay_message

# The whole `["EVENT", sub, {...}]` frame in one pass, straight into ``Event``; the bounds and
# hex checks msgspec would do through Python's `re` anyway (3 µs a frame) are done below instead.
_event_frame = msgspec.json.Decoder(tuple[Literal["EVENT"], str, Event])
# id + pubkey + sig, once their lengths (64, 64, 128) are known to be right.
_HEX_256 = re.compile(r"[0-9a-f]{256}")

# `["EVENT","<printable ASCII without quote or backslash>",` : a subscription id that is valid
# JSON as it stands, so a known event text after it makes the whole frame valid JSON.
_SIMPLE_HEAD = re.compile(rb'\["EVENT","[\x20\x21\x23-\x5b\x5d-\x7e]*",')
# Inside a JSON string every quote is escaped, so `"id":"<hex>"` can only be an object key:
# the event's own id (or an unknown field's nested object, which only costs a wasted lookup).
_CLAIMED_ID = re.compile(rb'"id"\s*:\s*"([0-9a-f]{64})"')
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
        head = _SIMPLE_HEAD.match(frame)
        if head is not None and known is not None and frame[-1] == 93:  # ends with "]"
            start = head.end()
            claimed = _CLAIMED_ID.search(frame, start)
            if claimed is not None:
                key = claimed.group(1)
                variants = known.get(key)
                if variants is not None:
                    size = len(frame) - start - 1
                    for text, event in variants:
                        if len(text) == size and frame.startswith(text, start):
                            self.state.accept(relay_url, event, seen_at)
                            return
        try:
            event = _event_frame.decode(frame)[2]
        except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
            self._precise(relay_url, frame, seen_at)
            return
        # Exactly what decode_event checks beyond the types; anything odd takes the precise path.
        if not (
            0 <= event.created_at <= MAX_CREATED_AT
            and 0 <= event.kind <= MAX_KIND
            and len(event.id) == 64
            and len(event.pubkey) == 64
            and len(event.sig) == 128
            and _HEX_256.fullmatch(event.id + event.pubkey + event.sig)
        ):
            self._precise(relay_url, frame, seen_at)
            return
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


# ---- several processes -----------------------------------------------------------------------


class _Batch(msgspec.Struct, array_like=True):
    """Frames for one worker: their concatenation travels separately, as one bytes message."""

    new_relays: list[str]  # relay URLs this worker has not been sent yet, in index order
    relay_index: bytes  # array('I') per frame
    seen_at: bytes  # array('d') per frame
    lengths: bytes  # array('Q') per frame


class _Outcome(msgspec.Struct, array_like=True):
    """One worker's result, as a single msgpack message."""

    events: list[Event]
    first_seen: list[float]  # aligned with events
    sighting_ids: list[str]
    sighting_relays: list[int]
    sighting_times: list[float]
    rejected: dict[str, int]
    bad_frames: dict[str, int]


def _worker_main(conn: Connection, max_frame_bytes: int | None) -> None:
    """Run a ``FrameIngestor`` over the batches read from ``conn`` until an empty message."""
    # This process only accumulates acyclic events until it reports: the collector would
    # rescan them again and again for nothing.
    gc.disable()
    ingestor = FrameIngestor(max_frame_bytes=max_frame_bytes)
    feed = ingestor.feed
    relays: list[str] = []
    decode_batch = msgspec.msgpack.Decoder(_Batch).decode
    while header := conn.recv_bytes():
        blob = conn.recv_bytes()
        batch = decode_batch(header)
        relays.extend(batch.new_relays)
        offset = 0
        for relay, seen_at, length in zip(
            _array("I", batch.relay_index),
            _array("d", batch.seen_at),
            _array("Q", batch.lengths),
            strict=True,
        ):
            feed(relays[relay], blob[offset : offset + length], seen_at)
            offset += length
    state = ingestor.state
    relay_number = {url: i for i, url in enumerate(relays)}
    sightings = state.sightings
    outcome = _Outcome(
        events=list(state.events.values()),
        first_seen=list(state.first_seen[event_id] for event_id in state.events),
        sighting_ids=[event_id for event_id, _ in sightings],
        sighting_relays=[relay_number[url] for _, url in sightings],
        sighting_times=list(sightings.values()),
        rejected=dict(ingestor.rejected),
        bad_frames=dict(ingestor.bad_frames),
    )
    conn.send_bytes(msgspec.msgpack.encode(outcome))
    conn.close()


def _array(typecode: str, data: bytes) -> array:
    values = array(typecode)
    values.frombytes(data)
    return values


class _Shard:
    """The parent's side of one worker: pending frames and a thread that writes batches."""

    def __init__(self, ctx: BaseContext, max_frame_bytes: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, max_frame_bytes), daemon=True)
        self.process.start()
        child.close()
        self.relays_sent = 0
        self.error: BaseException | None = None
        # A small queue: the parent keeps routing while the thread blocks in a pipe write
        # (which releases the GIL), and stops when the worker falls two batches behind.
        self.queue: queue.Queue[tuple[bytes, ...] | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._send_loop, daemon=True)
        self.thread.start()
        self.reset()

    def reset(self) -> None:
        self.frames: list[bytes] = []
        self.relay_index = array("I")
        self.seen_at = array("d")
        self.lengths = array("Q")
        self.size = 0

    def _send_loop(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    for message in item:
                        self.conn.send_bytes(message)
                except OSError as error:  # the worker died; reported by finish()
                    self.error = error

    def flush(self, relays: list[str]) -> None:
        if not self.frames:
            return
        header = _Batch(
            relays[self.relays_sent :],
            self.relay_index.tobytes(),
            self.seen_at.tobytes(),
            self.lengths.tobytes(),
        )
        self.relays_sent = len(relays)
        self.queue.put((msgspec.msgpack.encode(header), b"".join(self.frames)))
        self.reset()


class ParallelFrameIngestor:
    """``FrameIngestor`` over ``workers`` processes, with the same result for the same frames.

    Frames are routed by claimed event id, so every copy of an id meets the same worker in
    feed order; each worker verifies everything it gets, so routing only affects speed.
    Frames without a recognisable id go to worker 0; ``finish`` merges by id (earliest
    sightings win, as in ``IngestState``).
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        max_frame_bytes: int | None = None,
        batch_bytes: int = 1 << 20,
        start_method: str | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        ctx = multiprocessing.get_context(start_method or _default_start_method())
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload([__name__])
        self._batch_bytes = batch_bytes
        self._relays: list[str] = []
        self._relay_number: dict[str, int] = {}
        self._shards = [_Shard(ctx, max_frame_bytes) for _ in range(workers)]
        self._finished = False

    def feed(self, relay_url: str, frame: bytes | str, seen_at: float) -> None:
        if type(frame) is not bytes:
            try:
                frame = frame.encode() if isinstance(frame, str) else bytes(frame)
            except UnicodeEncodeError:
                frame = frame.encode("utf-8", "surrogatepass")  # refused as not_json by a worker
        number = self._relay_number.get(relay_url)
        if number is None:
            number = self._relay_number[relay_url] = len(self._relays)
            self._relays.append(relay_url)
        shards = self._shards
        # Most frames read `["EVENT","sub",{"id":"<hex>"`: slice the id without a scan.
        head = _SIMPLE_HEAD.match(frame)
        try:
            if head is None or not frame.startswith(b'{"id":"', head.end()):
                raise ValueError
            start = head.end() + 7
            shard = shards[int(frame[start : start + 8], 16) % len(shards)]
        except ValueError:  # another layout, or not hex: any shard is correct, this one is cheap
            claimed = _CLAIMED_ID.search(frame)
            shard = shards[int(claimed.group(1)[:8], 16) % len(shards) if claimed else 0]
        shard.frames.append(frame)
        shard.relay_index.append(number)
        shard.seen_at.append(seen_at)
        shard.lengths.append(len(frame))
        shard.size += len(frame)
        if shard.size >= self._batch_bytes:
            shard.flush(self._relays)

    def feed_many(self, frames: Iterable[tuple[str, bytes | str, float]]) -> None:
        feed = self.feed
        for relay_url, frame, seen_at in frames:
            feed(relay_url, frame, seen_at)

    def finish(self) -> IngestResult:
        """Send what is pending, stop the workers and merge their results."""
        if self._finished:
            raise RuntimeError("finish() was already called")
        self._finished = True
        for shard in self._shards:
            shard.flush(self._relays)
            shard.queue.put((b"",))  # an empty message ends the worker's loop
            shard.queue.put(None)
        result = IngestResult()
        decode = msgspec.msgpack.Decoder(_Outcome).decode
        try:
            for shard in self._shards:
                shard.thread.join()
                if shard.error is not None:
                    raise RuntimeError("a worker process died") from shard.error
                try:
                    payload = shard.conn.recv_bytes()
                except EOFError:
                    raise RuntimeError("a worker process died before reporting") from None
                with gc_paused():
                    _merge(result, decode(payload), self._relays)
        finally:
            self.close()
        return result

    def close(self) -> None:
        """Stop the workers (also after an error); idempotent."""
        self._finished = True
        for shard in self._shards:
            if shard.thread.is_alive():
                shard.queue.put(None)
            shard.process.join(timeout=5)
            if shard.process.is_alive():
                shard.process.terminate()
                shard.process.join()
            shard.conn.close()

    def __enter__(self) -> ParallelFrameIngestor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _merge(result: IngestResult, outcome: _Outcome, relays: list[str]) -> None:
    events, first_seen, sightings = result.events, result.first_seen, result.sightings
    for event, seen_at in zip(outcome.events, outcome.first_seen, strict=True):
        earlier = first_seen.get(event.id)
        if earlier is None:
            events[event.id] = event
            first_seen[event.id] = seen_at
        elif seen_at < earlier:
            first_seen[event.id] = seen_at
    for event_id, relay, seen_at in zip(
        outcome.sighting_ids, outcome.sighting_relays, outcome.sighting_times, strict=True
    ):
        key = (event_id, relays[relay])
        earlier = sightings.get(key)
        if earlier is None or seen_at < earlier:
            sightings[key] = seen_at
    result.rejected.update(outcome.rejected)
    result.bad_frames.update(outcome.bad_frames)


def _default_start_method() -> str:
    # forkserver: workers start from a clean single-threaded process (forking a threaded
    # parent such as Dagster's can deadlock), with this module already imported.
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"
