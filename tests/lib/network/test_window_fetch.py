"""Protects ``window_fetch.fetch_window`` against relay faults: whatever a relay does, the window
ends, the good events are kept, the bad ones are counted and the error is recorded.

The faults come from ``fault_relay.FaultRelay`` (a scripted server, because the real relay will
not misbehave on demand); the same pager against the real nostr-relay is in test_crawler.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import msgspec
import pytest
from fault_relay import FaultRelay
from relays import SECRET_KEYS

from nostr_assets.lib.network.connection import ClientConfig
from nostr_assets.lib.network.probe import probe_relay
from nostr_assets.lib.network.window_fetch import fetch_window
from nostr_assets.lib.network.window_reader import WindowStats
from nostr_assets.lib.protocol.event import Event, sign_event
from nostr_assets.lib.protocol.ingest import IngestState

pytestmark = pytest.mark.timeout(30)

SINCE = 1_704_067_200
UNTIL = SINCE + 3600
# The fault relay caps REQs at 5 events, far below any real relay (100 and up), so the client
# is told caps can be that small.
CONFIG = ClientConfig(
    allow_private=True, connect_timeout=3, idle_timeout=3, total_timeout=20, min_relay_cap=1
)


def signed(n: int, created_at, key: int = 0, kind=1) -> list[Event]:
    """n events; created_at and kind may be callables of the index."""
    return [
        sign_event(
            SECRET_KEYS[key],
            created_at(i) if callable(created_at) else created_at,
            kind(i) if callable(kind) else kind,
            [],
            f"fault test {key} {i}",
            bytes(32),
        )
        for i in range(n)
    ]


def run(relay: FaultRelay, config: ClientConfig = CONFIG, since=SINCE, until=UNTIL, kinds=None):
    """Serve the scripted relay and fetch one window from it; returns (stats, state)."""
    state = IngestState()

    async def main() -> WindowStats:
        async with relay:
            return await fetch_window(
                relay.url, since, until, kinds, config=config, sink=state.accept
            )

    return asyncio.run(main()), state


def test_silent_cap_below_the_limit_loses_nothing():
    events = signed(40, lambda i: SINCE + 10 + i * 7)
    stats, state = run(FaultRelay(events, cap=5))
    assert set(state.events) == {e.id for e in events}
    assert stats.events == 40 and stats.error_class is None and not stats.possibly_truncated
    assert stats.pages >= 8


@pytest.mark.parametrize("inclusive", [True, False])
def test_until_inclusive_and_exclusive_relays_are_both_complete(inclusive):
    # Events on both window bounds, and seconds holding 3 events around a cap of 5.
    events = signed(3, SINCE) + signed(3, UNTIL) + signed(3, UNTIL + 1) + signed(3, SINCE - 1)
    events += signed(30, lambda i: SINCE + 100 + (i // 3) * 50, key=1)
    stats, state = run(FaultRelay(events, cap=5, until_inclusive=inclusive))
    expected = {e.id for e in events if SINCE <= e.created_at <= UNTIL}
    assert set(state.events) == expected
    assert stats.events == len(expected) == 36
    assert stats.until_inclusive is inclusive
    assert not stats.possibly_truncated
    # The next second's events, which an inclusive relay sends for an ``until`` one past the
    # window, are not taken for a relay ignoring the filter.
    assert stats.out_of_filter == 0


def test_dense_second_is_split_by_kind_and_author():
    second = SINCE + 1800
    events = []
    for key in range(4):
        # 5 events per author in one second, kinds alternating: no (kind, author) fills a page.
        events += signed(5, second, key=key, kind=lambda i: (1, 7)[i % 2])
        # Each author also wrote earlier in the window, which is how the pager can name them.
        events += signed(1, SINCE + 60 + key, key=key, kind=30)
    stats, state = run(FaultRelay(events, cap=5))
    assert set(state.events) == {e.id for e in events}
    assert not stats.possibly_truncated
    assert stats.split_seconds >= 1


def _unseen_authors_in_one_second(n_authors: int = 12) -> list[Event]:
    """Two notes each from authors who wrote nothing else in the window."""
    return [
        sign_event(
            (100 + a).to_bytes(32, "big"), SINCE + 1800, 1, [], f"only now {a} {i}", bytes(32)
        )
        for a in range(n_authors)
        for i in range(2)
    ]


def test_dense_second_with_unseen_authors_is_flagged_by_count():
    """Authors never seen cannot be named in a split; NIP-45 COUNT shows what is missing."""
    events = _unseen_authors_in_one_second()
    stats, state = run(FaultRelay(events, cap=5))
    assert len(state.events) < len(events)
    assert stats.possibly_truncated
    assert f"the relay counts {len(events)} events" in stats.truncation_note


@pytest.mark.slow
def test_dense_second_without_count_support_is_not_called_complete():
    second = SINCE + 1800
    events = []
    for key in range(4):
        events += signed(5, second, key=key, kind=lambda i: (1, 7)[i % 2])
        events += signed(1, SINCE + 60 + key, key=key, kind=30)
    stats, state = run(FaultRelay(events, cap=5, count_supported=False))
    assert set(state.events) == {e.id for e in events}  # everything found ...
    assert stats.possibly_truncated  # ... but nothing proves it
    assert "no NIP-45 COUNT" in stats.truncation_note


def test_dense_second_of_one_author_and_kind_is_flagged_truncated():
    events = signed(20, SINCE + 1800)
    stats, state = run(FaultRelay(events, cap=5))
    assert stats.possibly_truncated
    assert "one author" in stats.truncation_note
    assert len(state.events) == 5  # what the relay showed is kept


def test_disconnect_mid_stream_keeps_what_arrived():
    events = signed(30, lambda i: SINCE + i)
    stats, state = run(FaultRelay(events, disconnect_after=10))
    assert stats.events == len(state.events) == 10
    assert stats.error_class == "connection_closed"


def test_garbage_frames_are_counted_and_skipped():
    garbage = ["not json", "[1, 2]", '["WHAT", 1]', "{}", '["EOSE"]', "[]"]
    events = signed(12, lambda i: SINCE + i * 60)
    stats, state = run(FaultRelay(events, garbage_before_eose=garbage))
    assert len(state.events) == 12 and stats.error_class is None
    assert stats.bad_frames["not_json"] >= 1
    assert stats.bad_frames["not_an_array"] >= 1
    assert stats.bad_frames["unknown_type"] >= 1
    assert stats.bad_frames["bad_shape"] >= 2


def test_stall_without_eose_times_out_and_keeps_events():
    events = signed(7, lambda i: SINCE + i)
    stats, state = run(FaultRelay(events, stall=True), _config(idle_timeout=0.5))
    assert stats.error_class == "timeout_idle"
    assert stats.events == len(state.events) == 7
    assert not stats.eose_received


def test_total_timeout_ends_a_slow_window():
    stats, _ = run(FaultRelay(signed(3, SINCE), stall=True), _config(idle_timeout=5, total=0.5))
    assert stats.error_class == "timeout_total"


def test_closed_auth_required_is_recorded():
    relay = FaultRelay(
        signed(3, SINCE),
        closed_message="auth-required: sign in first",
        auth_challenge="challenge-123",
    )
    stats, state = run(relay)
    assert stats.closed_prefix == "auth-required"
    assert stats.error_class == "closed_by_relay"
    assert stats.auth_challenge == "challenge-123"
    assert not state.events


def test_rate_limited_is_retried_after_a_pause():
    relay = FaultRelay(
        signed(4, SINCE + 5), closed_message="rate-limited: slow down", closed_times=1
    )
    stats, state = run(relay, _config(rate_limit_backoff=0.05))
    assert len(state.events) == 4 and stats.error_class is None
    assert stats.closed_prefix == "rate-limited"


def test_rate_limited_relay_is_waited_out_with_growing_pauses():
    """Five refusals in a row: pauses of 0.05, 0.1, 0.2, 0.2 and 0.2 s (capped), then the
    REQ gets through and the window is complete, not an error."""
    relay = FaultRelay(
        signed(4, SINCE + 5), closed_message="rate-limited: slow down", closed_times=5
    )
    started = time.perf_counter()
    stats, state = run(relay, _config(rate_limit_backoff=0.05))
    assert len(state.events) == 4 and stats.error_class is None and stats.eose_received
    assert time.perf_counter() - started >= 0.75


def test_a_relay_that_never_lifts_its_rate_limit_ends_the_window_when_waiting_is_spent():
    relay = FaultRelay(signed(4, SINCE + 5), closed_message="rate-limited: slow down")
    stats, state = run(relay, _config(rate_limit_backoff=0.05, rate_limit_max_wait=0.5))
    assert stats.error_class == "closed_by_relay" and not state.events
    assert stats.pages >= 3  # asked again a few times before giving up


def test_invalid_signatures_and_ids_are_counted_good_events_kept():
    good = signed(10, lambda i: SINCE + i)
    other = signed(5, lambda i: SINCE + 100 + i, key=2)
    bad_sig = [msgspec.structs.replace(e, sig=good[0].sig) for e in other[:3]]
    bad_id = [msgspec.structs.replace(e, content="tampered") for e in other[3:]]
    stats, state = run(FaultRelay(good + bad_sig + bad_id))
    assert set(state.events) == {e.id for e in good}
    assert stats.events == 10
    assert stats.invalid_signatures == 3 and stats.invalid_ids == 2
    assert stats.invalid == {"bad_signature": 3, "id_mismatch": 2}


def test_oversized_frame_is_counted_and_events_before_it_kept():
    events = signed(10, lambda i: SINCE + i)
    relay = FaultRelay(events, oversized_after=5, oversized_bytes=200_000)
    stats, state = run(relay, _config(max_frame_bytes=100_000))
    assert stats.error_class == "too_large"
    assert stats.bad_frames["too_large"] == 1
    assert stats.events == len(state.events) == 5


def test_event_cap_per_window_flags_truncation():
    stats, state = run(FaultRelay(signed(30, lambda i: SINCE + i)), _config(max_events=10))
    assert stats.possibly_truncated and "max_events_per_window" in stats.truncation_note
    assert len(state.events) == 10


def test_loopback_is_refused_unless_allowed():
    stats, _ = run(FaultRelay(signed(1, SINCE)), _config(allow_private=False))
    assert stats.error_class == "refused_address"
    assert stats.connected_ip is None


def test_closed_port_is_an_error_not_an_exception():
    state = IngestState()
    stats = asyncio.run(
        fetch_window("ws://127.0.0.1:1", SINCE, UNTIL, config=CONFIG, sink=state.accept)
    )
    assert stats.error_class == "connection_refused"
    assert stats.to_dict()["relay_url"] == "ws://127.0.0.1:1"


def _config(
    idle_timeout: float = 3,
    total: float = 20,
    max_frame_bytes: int = 2**20,
    max_events: int = 500_000,
    allow_private: bool = True,
    rate_limit_backoff: float = 2.0,
    rate_limit_max_wait: float = 150.0,
) -> ClientConfig:
    return ClientConfig(
        allow_private=allow_private,
        connect_timeout=3,
        idle_timeout=idle_timeout,
        total_timeout=total,
        max_frame_bytes=max_frame_bytes,
        max_events_per_window=max_events,
        rate_limit_backoff=rate_limit_backoff,
        rate_limit_max_pause=0.2,
        rate_limit_max_wait=rate_limit_max_wait,
        min_relay_cap=1,
    )


def test_redirect_to_another_address_is_refused_and_recorded():
    """A relay answering the websocket upgrade with a redirect to the cloud metadata address:
    the pinned connection never follows it, and the window records why it ended. (A fault a
    real relay will not produce on demand: a four-line HTTP server plays it.)"""

    async def redirect(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 301 Moved\r\nLocation: ws://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    async def scenario():
        server = await asyncio.start_server(redirect, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server:
            stats = await fetch_window(url, SINCE, UNTIL, config=CONFIG, sink=lambda *a: None)
            probe = await probe_relay(url, config=CONFIG)
        return stats, probe

    stats, probe = asyncio.run(scenario())
    assert stats.error_class == "redirect_refused"
    assert probe.error_class == "redirect_refused" and not probe.reachable


@pytest.mark.parametrize("held", [1, 3])
def test_a_relay_holding_a_few_events_is_complete_in_a_few_reqs(held):
    # A relay that holds 1 or 3 events in the window is not a relay capped at 1 or 3: no
    # split of the second by kind and author, no truncation flag (it used to take ~20 REQs).
    events = signed(held, SINCE + 600)
    stats, state = run(FaultRelay(events), replace(CONFIG, min_relay_cap=10))
    assert set(state.events) == {e.id for e in events}
    assert not stats.possibly_truncated and stats.split_seconds == 0
    # One REQ: its ``until`` one past the window settles the last second on either kind of
    # relay, and a page shorter than any real cap ends the walk.
    assert stats.pages == 1, stats.pages


def test_a_long_walk_is_fetched_in_slices_side_by_side():
    # 120 events over the hour behind a cap of 5: some 24 pages one after the other.
    events = signed(120, lambda i: SINCE + 10 + i * 29)
    relay = FaultRelay(events, cap=5, round_trip=0.02)
    stats, state = run(relay)
    assert set(state.events) == {e.id for e in events}
    assert stats.error_class is None and not stats.possibly_truncated
    assert relay.max_reqs_at_once > 1


def test_a_short_walk_on_a_fast_relay_stays_one_req_at_a_time():
    # 20 events, cap 5: four pages are cheaper one after the other than in parallel slices,
    # each of which ends on a page of its own (and rate-limited relays count every REQ).
    events = signed(20, lambda i: SINCE + 10 + i * 170)
    relay = FaultRelay(events, cap=5, round_trip=0.02)
    stats, state = run(relay)
    assert set(state.events) == {e.id for e in events} and stats.error_class is None
    assert relay.max_reqs_at_once == 1


def test_the_byte_budget_cuts_a_window_of_huge_valid_events():
    # 40 valid events of 20 kB each from one relay: 800 kB against a 200 kB budget.
    events = [
        sign_event(bytes([9]) * 32, SINCE + i, 1, [], "x" * 20_000, aux_rand=bytes(32))
        for i in range(40)
    ]
    stats, state = run(FaultRelay(events), replace(CONFIG, max_window_bytes=200_000))
    assert stats.error_class == "byte_budget"
    assert stats.possibly_truncated and "max_window_bytes" in stats.truncation_note
    assert 0 < len(state.events) < 40  # what arrived within the budget is kept
    assert stats.bytes_received <= 200_000 + 21_000  # cut at the frame that crossed it


def test_the_held_bytes_budget_bounds_what_a_crawl_keeps():
    # The same 40 big events; each window is within its own budget, but the crawl may hold
    # only about 5 of them: past that the window is cut and flagged, nothing more is kept.
    events = [
        sign_event(bytes([9]) * 32, SINCE + i, 1, [], "y" * 20_000, aux_rand=bytes(32))
        for i in range(40)
    ]
    state = IngestState(max_held_bytes=5 * 20_600)

    async def main() -> WindowStats:
        async with FaultRelay(events) as relay:
            return await fetch_window(
                relay.url, SINCE, UNTIL, None, config=CONFIG, sink=state.accept
            )

    stats = asyncio.run(main())
    assert len(state.events) == 5 and state.held_bytes <= state.max_held_bytes
    assert stats.error_class == "byte_budget" and stats.possibly_truncated
    assert "max_held_bytes" in stats.truncation_note


@pytest.mark.parametrize("count_supported", [True, False])
def test_a_dense_second_counted_complete_skips_the_sweep_over_every_author(count_supported):
    # 6 reactions of 2 authors in one second (cap 5: any page of it shows both authors), and
    # 30 other authors elsewhere in the hour. Once the second's own authors are fetched, a
    # relay that counts proves the second complete: no REQ names the 30 others. Without COUNT
    # they are swept, as before.
    dense = [
        sign_event(bytes([20 + i % 2]) * 32, SINCE + 900, 7, [], f"+{i}", aux_rand=bytes(32))
        for i in range(6)
    ]
    others = [
        sign_event(bytes([40 + i]) * 32, SINCE + 10 + i, 1, [], "gm", aux_rand=bytes(32))
        for i in range(30)
    ]
    relay = FaultRelay(dense + others, cap=5, count_supported=count_supported)
    _, state = run(relay)
    assert set(state.events) == {e.id for e in dense + others}
    dense_authors = {e.pubkey for e in dense}
    swept = [f for f in relay.requests if set(f.get("authors", [])) - dense_authors]
    assert bool(swept) is not count_supported


def test_events_for_no_open_subscription_are_counted_not_taken():
    events = signed(12, lambda i: SINCE + 60 * i)
    stray = signed(1, SINCE + 30, key=1)[0]  # in the window, but no filter of ours asked for it
    relay = FaultRelay(events, cap=5, stray=stray)
    stats, state = run(relay)
    assert stats.events == 12 and stats.error_class is None
    assert stray.id not in state.events
    # One under an id never opened per REQ, one for the REQ before (already ended) per REQ
    # but the first.
    requests = len(relay.requests)
    assert requests >= 3
    assert stats.stray_events == 2 * requests - 1
