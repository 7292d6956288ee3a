"""CPU per received copy of an event, on the crawler's own per-frame path.

Most frames a network crawl receives are copies of events another relay already served (an
hour of the relay farm: 148,000 copies of 67,700 events). For each, the crawler decodes the
frame (``messages.decode_event_frame``), checks it against the window's filter and its
subscription (``WindowReader._event``), and records the sighting in the crawl's
``IngestState`` without verifying again. This measures that path on the events of
``synthetic.py`` (notes, reactions, reposts and contact lists with hundreds of ``p`` tags):

- ``first copy``: the same path for events not seen before (id and BIP-340 checks included);
- ``copy already seen``: a second relay's frames of the same events. Target: <= 15 us.

    python benchmarks/bench_copy_path.py [--events 20000]

The websocket read itself (websockets' frame parsing, about as much again per frame) is not
in these figures: bench_network_hour.py measures the whole crawl.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import load_or_build

from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.window_reader import Page, WindowReader, WindowStats, _Sub
from nostr_assets.lib.protocol.event import encode_event
from nostr_assets.lib.protocol.ingest import IngestState
from nostr_assets.lib.protocol.messages import decode_event_frame

TARGET_SEEN_US = 15.0


def frames_of(events, sub: str) -> list[bytes]:
    prefix = b'["EVENT","' + sub.encode() + b'",'
    return [prefix + encode_event(e) + b"]" for e in events]


def read_all(reader: WindowReader, frames: list[bytes], lo: int, hi: int) -> float:
    """Seconds of CPU to take ``frames`` through the reader's per-frame path."""
    sub = _Sub(Page(), lo, hi, None, {"since": lo, "until": hi})
    gc.collect()
    started = time.process_time()
    for frame in frames:
        decoded = decode_event_frame(frame)
        if decoded is not None:
            reader._event(decoded[1], sub)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    events = load_or_build(args.events)
    lo = min(e.created_at for e in events)
    hi = max(e.created_at for e in events)
    tags = sum(len(e.tags) for e in events)
    state = IngestState()
    config = ClientConfig()

    def reader(url: str) -> WindowReader:
        stats = WindowStats(relay_url=url, since=lo, until=hi)
        return WindowReader(None, url, None, config, state.accept, stats)  # type: ignore[arg-type]

    first = read_all(reader("wss://first.example"), frames_of(events, "a"), lo, hi)
    seen = read_all(reader("wss://second.example"), frames_of(events, "b"), lo, hi)
    n = len(events)
    assert len(state.events) == n and len(state.sightings) == 2 * n
    figures = {
        "events": n,
        "tags_per_event": round(tags / n, 1),
        "first_copy_us": round(first / n * 1e6, 1),
        "seen_copy_us": round(seen / n * 1e6, 1),
        "target_seen_copy_us": TARGET_SEEN_US,
    }
    print(f"{n:,} events, {figures['tags_per_event']} tags each on average")
    print(f"first copy (decode, filter, id + signature check): {figures['first_copy_us']} us")
    ok = "ok" if figures["seen_copy_us"] <= TARGET_SEEN_US else "OVER"
    print(
        f"copy already seen (decode, filter, sighting):      {figures['seen_copy_us']} us "
        f"(target <= {TARGET_SEEN_US} us: {ok})"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
