"""What runs in one ingest worker process, and the two messages it exchanges with the parent.

Its one job is the child side of ``parallel_ingest``: read ``Batch`` messages from a pipe, feed
their frames to a ``FrameIngestor``, and report everything it kept as one ``Outcome``. It is
apart from the parent's routing and merging because this is the code a fresh process imports
and runs; the message layouts live here since the worker is what they are shaped for.
"""

from __future__ import annotations

import gc
from array import array
from multiprocessing.connection import Connection

import msgspec
from frame_ingest import FrameIngestor

from nostr_assets.lib.protocol.event import Event


class Batch(msgspec.Struct, array_like=True):
    """Frames for one worker: their concatenation travels separately, as one bytes message."""

    new_relays: list[str]  # relay URLs this worker has not been sent yet, in index order
    relay_index: bytes  # array('I') per frame
    seen_at: bytes  # array('d') per frame
    lengths: bytes  # array('Q') per frame


class Outcome(msgspec.Struct, array_like=True):
    """One worker's result, as a single msgpack message."""

    events: list[Event]
    first_seen: list[float]  # aligned with events
    sighting_ids: list[str]
    sighting_relays: list[int]
    sighting_times: list[float]
    rejected: dict[str, int]
    bad_frames: dict[str, int]


def worker_main(conn: Connection, max_frame_bytes: int | None) -> None:
    """Run a ``FrameIngestor`` over the batches read from ``conn`` until an empty message."""
    # This process only accumulates acyclic events until it reports: the collector would
    # rescan them again and again for nothing.
    gc.disable()
    ingestor = FrameIngestor(max_frame_bytes=max_frame_bytes)
    feed = ingestor.feed
    relays: list[str] = []
    decode_batch = msgspec.msgpack.Decoder(Batch).decode
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
    outcome = Outcome(
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
