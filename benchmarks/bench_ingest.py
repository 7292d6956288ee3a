"""Throughput of the ingest hot path against the BIP-340 verification floor.

Builds N signed events (``synthetic.load_or_build``), wraps each as ``["EVENT","sub",{...}]``
frames served by several simulated relays (relay 0 has every event; the others large
overlapping subsets; every third relay re-serializes events with sorted keys and ASCII
escapes, as relays that re-encode do), interleaves the relays' streams, then measures:

- the full path (frame parse + id check + signature check + dedupe + sightings) with
  ``FrameIngestor`` on one core and ``ParallelFrameIngestor`` on ``--workers`` processes,
  from start-up to the merged result;
- the raw verify loop ``PublicKeyXOnly(pubkey).verify(sig, id)`` on pre-parsed bytes, one
  core and two processes (start-up included there too).

Targets (from the issue): full path >= 60 % of the raw loop on one core, and the parallel
full path >= 1.6x the single-core one.

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--events 50000] [--relays 3]``
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import random
import sys
import time
from pathlib import Path

from coincurve import PublicKeyXOnly

sys.path.insert(0, str(Path(__file__).resolve().parent))

from frame_ingest import (
    FrameIngestor,
    gc_paused,
)
from parallel_ingest import ParallelFrameIngestor
from synthetic import load_or_build

from nostr_assets.lib.protocol.event import Event, encode_event

SEEN_BASE = 1_800_000_000.0
PAGE = 5_000  # frames fed per call, like a crawler handing over a page of messages


def _resorted(event: Event) -> bytes:
    obj = {f: getattr(event, f) for f in Event.__struct_fields__}
    return json.dumps(obj, sort_keys=True).encode()


def relay_frames(events: list[Event], relays: int, seed: int = 7) -> list[tuple[str, bytes, float]]:
    """Every relay's EVENT frames, interleaved as if read concurrently."""
    rng = random.Random(seed)
    streams = []
    for r in range(relays):
        share = 1.0 if r == 0 else max(0.5, 0.92 - 0.05 * (r - 1))
        chosen = [e for e in events if rng.random() < share]
        for start in range(0, len(chosen), 100):  # relays return pages in their own order
            block = chosen[start : start + 100]
            rng.shuffle(block)
            chosen[start : start + 100] = block
        encode = _resorted if r % 3 == 2 else encode_event
        url = f"wss://relay{r}.example.com"
        sub = b'["EVENT","bench-%d",' % r
        streams.append([(url, sub + encode(e) + b"]") for e in chosen])
    out: list[tuple[str, bytes, float]] = []
    positions = [0] * relays
    live = [r for r in range(relays) if streams[r]]
    while live:
        r = rng.choice(live)
        url, frame = streams[r][positions[r]]
        out.append((url, frame, SEEN_BASE + len(out) * 1e-4))
        positions[r] += 1
        if positions[r] == len(streams[r]):
            live.remove(r)
    return out


def full_single(frames: list[tuple[str, bytes, float]]) -> tuple[float, FrameIngestor]:
    ingestor = FrameIngestor()
    start = time.perf_counter()
    for page in range(0, len(frames), PAGE):
        ingestor.feed_many(frames[page : page + PAGE])
    return time.perf_counter() - start, ingestor


def full_parallel(frames: list[tuple[str, bytes, float]], workers: int, method: str | None):
    start = time.perf_counter()
    ingestor = ParallelFrameIngestor(workers, start_method=method)
    for page in range(0, len(frames), PAGE):
        ingestor.feed_many(frames[page : page + PAGE])
    result = ingestor.finish()
    return time.perf_counter() - start, result


def _raw_verify(items: list[tuple[bytes, bytes, bytes]]) -> int:
    ok = 0
    for pubkey, sig, digest in items:
        ok += PublicKeyXOnly(pubkey).verify(sig, digest)
    return ok


def raw_single(items: list[tuple[bytes, bytes, bytes]]) -> float:
    start = time.perf_counter()
    assert _raw_verify(items) == len(items)
    return time.perf_counter() - start


_SHARED: list[tuple[bytes, bytes, bytes]] = []


def _raw_verify_part(part: tuple[int, int]) -> int:
    return _raw_verify(_SHARED[part[0] :: part[1]])


def raw_parallel(items: list[tuple[bytes, bytes, bytes]], workers: int) -> float:
    """The floor on several cores: forked workers inherit the parsed bytes (nothing pickled)."""
    _SHARED[:] = items
    ctx = multiprocessing.get_context("fork")
    start = time.perf_counter()
    with ctx.Pool(workers) as pool:
        assert sum(pool.map(_raw_verify_part, [(i, workers) for i in range(workers)])) == len(items)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--relays", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start-method", default=None, help="fork, forkserver or spawn")
    parser.add_argument("--no-cache", action="store_true", help="rebuild the signed events")
    args = parser.parse_args()

    prep = time.perf_counter()
    with gc_paused():
        events = load_or_build(
            args.events,
            cache_dir=None if args.no_cache else Path(__file__).resolve().parent / ".cache",
        )
        frames = relay_frames(events, args.relays)
        items = [
            (bytes.fromhex(e.pubkey), bytes.fromhex(e.sig), bytes.fromhex(e.id)) for e in events
        ]
    # The fixtures are long-lived: keep the collector from rescanning them in every section.
    gc.collect()
    gc.freeze()
    megabytes = sum(len(f) for _, f, _ in frames) / 1e6
    print(
        f"{len(events)} events, {len(frames)} frames from {args.relays} relays "
        f"({megabytes:.0f} MB), prepared in {time.perf_counter() - prep:.1f} s"
    )

    t_full1, single = full_single(frames)
    unique = len(single.state.events)
    assert unique == len(events), (unique, single.rejected, single.bad_frames)
    t_full2, merged = full_parallel(frames, args.workers, args.start_method)
    assert merged.events.keys() == single.state.events.keys()
    assert merged.sightings == single.state.sightings
    t_raw1 = raw_single(items)
    t_raw2 = raw_parallel(items, args.workers)

    full1, full2 = unique / t_full1, unique / t_full2
    raw1, raw2 = len(items) / t_raw1, len(items) / t_raw2
    print(f"full path, 1 core ({'FrameIngestor'}):            {full1:10,.0f} unique events/s")
    print(
        f"full path, {args.workers} processes (ParallelFrameIngestor): "
        f"{full2:10,.0f} unique events/s"
    )
    print(f"raw verify loop, 1 core:                       {raw1:10,.0f} verifies/s")
    print(f"raw verify loop, {args.workers} processes:                 {raw2:10,.0f} verifies/s")
    print(f"ratio full 1 core / raw verify 1 core:  {full1 / raw1:.2f}  (target >= 0.60)")
    print(
        f"ratio full {args.workers} cores / full 1 core:        {full2 / full1:.2f}  "
        "(target >= 1.60)"
    )
    print(
        json.dumps(
            {
                "bench": "ingest",
                "events": len(events),
                "frames": len(frames),
                "relays": args.relays,
                "workers": args.workers,
                "full_1core_eps": round(full1),
                "full_parallel_eps": round(full2),
                "raw_verify_1core_vps": round(raw1),
                "raw_verify_parallel_vps": round(raw2),
                "ratio_full1_raw1": round(full1 / raw1, 3),
                "ratio_full_parallel_full1": round(full2 / full1, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
