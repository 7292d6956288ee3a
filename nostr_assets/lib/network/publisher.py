"""Send signed events to relays and record what each relay answered.

A relay answers an EVENT with ``["OK", id, true|false, message]`` (NIP-01): accepted,
accepted as a duplicate, or refused with a machine-readable prefix (``blocked:``,
``rate-limited:``, ``auth-required:`` ...). A relay that is down, refuses the connection or
stays silent is recorded too, and never fails the other relays: publishing is best effort,
and the record says exactly what happened where.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import websockets

from nostr_assets.lib.network.connection import ClientConfig, WindowEnded, open_connection
from nostr_assets.lib.protocol.event import Event, encode_event
from nostr_assets.lib.protocol.messages import BadFrame, OkMessage, decode_relay_message

# What became of one event at one relay.
ACCEPTED = "accepted"
DUPLICATE = "duplicate"  # accepted earlier: a re-run that publishes nothing new
REFUSED = "refused"  # OK false; the message says why
NO_ANSWER = "no_answer"  # the relay said nothing about it in time
UNREACHABLE = "unreachable"  # no connection (the error class is the message)
PUBLISH_STATUSES = (ACCEPTED, DUPLICATE, REFUSED, NO_ANSWER, UNREACHABLE)


@dataclass(frozen=True)
class PublishResult:
    relay_url: str
    event_id: str
    kind: int
    status: str  # one of PUBLISH_STATUSES
    message: str | None
    answered_at: float  # unix seconds


def _status(ok: OkMessage) -> str:
    # NIP-01 says a duplicate is OK true with "duplicate:"; some relays (nostr-relay) send it
    # with false. Either way the relay holds the event.
    if ok.prefix == "duplicate":
        return DUPLICATE
    return ACCEPTED if ok.accepted else REFUSED


async def publish_to_relay(
    url: str, events: Sequence[Event], config: ClientConfig
) -> list[PublishResult]:
    """Send ``events`` to one relay on one connection; one result per event. The whole
    exchange is bounded by ``total_timeout``: a relay that trickles its answers cannot hold
    the step (and with it the warehouse's writer slot) for long."""
    results: dict[str, PublishResult] = {}
    try:
        async with asyncio.timeout(config.total_timeout):
            await _exchange(url, events, config, results)
    except TimeoutError:
        pass  # what was answered is kept; the rest is NO_ANSWER below
    now = time.time()
    return [
        results.get(e.id) or PublishResult(url, e.id, e.kind, NO_ANSWER, None, now) for e in events
    ]


async def _exchange(
    url: str, events: Sequence[Event], config: ClientConfig, results: dict[str, PublishResult]
) -> None:
    """Send ``events`` on one connection and fill ``results`` with the answers as they come."""
    try:
        ws, _, _ = await open_connection(url, config)
    except WindowEnded as ended:
        now = time.time()
        for e in events:
            results[e.id] = PublishResult(
                url, e.id, e.kind, UNREACHABLE, str(ended.error_class), now
            )
        return

    wanted = {event.id: event for event in events}
    pending = list(wanted)  # in the order sent, which is the order a relay answers in
    try:
        for event in events:
            await ws.send(b'["EVENT",' + encode_event(event) + b"]", text=True)
        while pending:
            # Each answer gets the idle timeout: a relay that slows down after refusals
            # (nostr-relay doubles a pause per refusal) is waited for, a silent one is not.
            try:
                async with asyncio.timeout(config.idle_timeout):
                    frame = await ws.recv()
            except TimeoutError:
                return  # silent for longer than the idle timeout: the rest is NO_ANSWER
            try:
                message = decode_relay_message(frame, config.max_frame_bytes)
            except BadFrame:
                continue
            if not isinstance(message, OkMessage):
                continue
            # Some relays (nostr-relay among them) refuse with an OK that names no event:
            # relays answer a connection's EVENTs in order, so it is the oldest unanswered.
            event_id = message.event_id if message.event_id in wanted else pending[0]
            if event_id in pending:
                pending.remove(event_id)
            event = wanted[event_id]
            results.setdefault(
                event_id,
                PublishResult(
                    url,
                    event_id,
                    event.kind,
                    _status(message),
                    message.message[:300] or None,
                    time.time(),
                ),
            )
    except (websockets.ConnectionClosed, OSError):
        pass  # what was answered is kept; the rest is NO_ANSWER
    finally:
        await ws.close()


async def publish(
    relays: Sequence[str], events: Sequence[Event], config: ClientConfig
) -> list[PublishResult]:
    """Send ``events`` to every relay at once; results by relay, then in event order."""
    per_relay = await asyncio.gather(*(publish_to_relay(url, events, config) for url in relays))
    return [result for results in per_relay for result in results]
