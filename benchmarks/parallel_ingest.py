"""Frame ingestion spread over worker processes, with the same result as one ``FrameIngestor``.

Its one job is the parent's side of the sharding: frames are routed by claimed event id to
worker processes (``ingest_worker``, each running a ``FrameIngestor``), and their results are
merged by id. It exists because BIP-340 verification (about 29 µs per unique event) bounds one
core; spreading it over processes is the only way to go faster. It is apart from
``frame_ingest`` because the process, pipe and thread plumbing has nothing to do with how a
single frame is judged.

Frames travel in batches (a msgpack header plus one concatenated bytes message) and results
come back as one msgpack message per worker, so pickling never touches the hot path.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from array import array
from collections.abc import Iterable
from multiprocessing.context import BaseContext

import msgspec
from frame_ingest import CLAIMED_ID, SIMPLE_HEAD, IngestResult, gc_paused
from ingest_worker import Batch, Outcome, worker_main


class _Shard:
    """The parent's side of one worker: pending frames and a thread that writes batches."""

    def __init__(self, ctx: BaseContext, max_frame_bytes: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, max_frame_bytes), daemon=True)
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
        header = Batch(
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
        head = SIMPLE_HEAD.match(frame)
        try:
            if head is None or not frame.startswith(b'{"id":"', head.end()):
                raise ValueError
            start = head.end() + 7
            shard = shards[int(frame[start : start + 8], 16) % len(shards)]
        except ValueError:  # another layout, or not hex: any shard is correct, this one is cheap
            claimed = CLAIMED_ID.search(frame)
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
        decode = msgspec.msgpack.Decoder(Outcome).decode
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


def _merge(result: IngestResult, outcome: Outcome, relays: list[str]) -> None:
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
