"""A small scriptable relay for tests, speaking just enough NIP-01 (REQ, CLOSE) to serve events.

It exists only to inject faults that a real server (the PyPI nostr-relay used elsewhere in the
tests) will not produce on demand: a disconnect in the middle of a stream, garbage frames, a
stall without EOSE, a silent cap of a few events per REQ, ``until`` treated inclusively or
exclusively at will, CLOSED with a chosen prefix, frames larger than the client accepts,
events with bad signatures, EVENTs for subscriptions never opened or already ended, and
NIP-77 NEG-OPEN answered with NEG-MSG, NEG-ERR or silence.
Everything else about a relay is deliberately absent.

Use inside a running event loop::

    async with FaultRelay(events, cap=5) as relay:
        stats = await fetch_window(relay.url, ...)
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from nostr_assets.lib.protocol.event import Event, encode_event


@dataclass
class FaultRelay:
    events: list[Event] = field(default_factory=list)
    cap: int | None = None  # silent cap per REQ, whatever limit the client asks
    until_inclusive: bool = True
    disconnect_after: int | None = None  # drop the connection after sending this many events
    garbage_before_eose: list[str] = field(default_factory=list)  # frames sent before each EOSE
    stall: bool = False  # send the events, then neither EOSE nor anything else
    closed_message: str | None = None  # answer every REQ with CLOSED and this message
    closed_times: int | None = None  # ... only for the first N REQs (None: always)
    count_supported: bool = True  # answer NIP-45 COUNT (exactly, whatever the cap)
    # NIP-77 NEG-OPEN: "msg" answers NEG-MSG (an empty IdList), "err" NEG-ERR, None nothing.
    negentropy: str | None = None
    oversized_after: int | None = None  # after N events, send one frame of oversized_bytes
    oversized_bytes: int = 2_000_000
    auth_challenge: str | None = None  # sent as AUTH when a client connects
    on_connect: list[str] = field(default_factory=list)  # frames sent as a client connects
    # Sent as EVENTs for no open subscription: before each EOSE under an id never opened, and
    # before answering each REQ but the first under the id of the REQ before (already ended).
    stray: Event | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)  # every filter received
    # Seconds before each REQ is answered; REQs are then answered side by side, and the most
    # answered at once is recorded in max_reqs_at_once.
    round_trip: float = 0.0
    max_reqs_at_once: int = 0

    async def __aenter__(self) -> FaultRelay:
        self._sent = 0
        self._last_sub: str | None = None
        self._closed_count = 0
        self._reqs_at_once = 0
        self._answering: set[asyncio.Task] = set()
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=2**22)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def _matches(self, event: Event, flt: dict[str, Any]) -> bool:
        if "since" in flt and event.created_at < flt["since"]:
            return False
        if "until" in flt:
            over = (
                event.created_at > flt["until"]
                if self.until_inclusive
                else (event.created_at >= flt["until"])
            )
            if over:
                return False
        if "kinds" in flt and event.kind not in flt["kinds"]:
            return False
        return not ("authors" in flt and event.pubkey not in flt["authors"])

    def select(self, flt: dict[str, Any]) -> list[Event]:
        chosen = [e for e in self.events if self._matches(e, flt)]
        chosen.sort(key=lambda e: (e.created_at, e.id), reverse=True)  # newest first
        limit = flt.get("limit") or len(chosen)
        if self.cap is not None:
            limit = min(limit, self.cap)
        return chosen[:limit]

    async def _handle(self, ws: ServerConnection) -> None:
        if self.auth_challenge is not None:
            await ws.send(json.dumps(["AUTH", self.auth_challenge]))
        for frame in self.on_connect:
            await ws.send(frame)
        async for frame in ws:
            message = json.loads(frame)
            if message[0] == "COUNT" and self.count_supported:
                count = len([e for e in self.events if self._matches(e, message[2])])
                await ws.send(json.dumps(["COUNT", message[1], {"count": count}]))
                continue
            if message[0] == "NEG-OPEN" and self.negentropy is not None:
                answer = (
                    ["NEG-MSG", message[1], "6100000200"]
                    if self.negentropy == "msg"
                    else ["NEG-ERR", message[1], "blocked: negentropy is off here"]
                )
                await ws.send(json.dumps(answer))
                continue
            if message[0] != "REQ":
                continue
            sub, flt = message[1], message[2]
            self.requests.append(flt)
            if self.stray is not None and self._last_sub is not None:
                await ws.send(self._event_frame(self._last_sub, self.stray))
            self._last_sub = sub
            if self.round_trip:
                task = asyncio.create_task(self._answer_later(ws, sub, flt))
                self._answering.add(task)  # held, so the loop does not collect it mid-answer
                task.add_done_callback(self._answering.discard)
                continue
            if self.closed_message is not None and (
                self.closed_times is None or self._closed_count < self.closed_times
            ):
                self._closed_count += 1
                await ws.send(json.dumps(["CLOSED", sub, self.closed_message]))
                continue
            for event in self.select(flt):
                if self.disconnect_after is not None and self._sent >= self.disconnect_after:
                    await ws.close()
                    return
                if self.oversized_after is not None and self._sent == self.oversized_after:
                    await ws.send(json.dumps(["NOTICE", "x" * self.oversized_bytes]))
                payload = encode_event(event).decode()
                await ws.send(f'["EVENT",{json.dumps(sub)},{payload}]')
                self._sent += 1
            if self.stall:
                await ws.wait_closed()  # until the client gives up
                return
            for garbage in self.garbage_before_eose:
                await ws.send(garbage)
            if self.stray is not None:
                await ws.send(self._event_frame("never-opened", self.stray))
            await ws.send(json.dumps(["EOSE", sub]))

    @staticmethod
    def _event_frame(sub: str, event: Event) -> str:
        return f'["EVENT",{json.dumps(sub)},{encode_event(event).decode()}]'

    async def _answer_later(self, ws: ServerConnection, sub: str, flt: dict[str, Any]) -> None:
        self._reqs_at_once += 1
        self.max_reqs_at_once = max(self.max_reqs_at_once, self._reqs_at_once)
        try:
            await asyncio.sleep(self.round_trip)
            for event in self.select(flt):
                await ws.send(f'["EVENT",{json.dumps(sub)},{encode_event(event).decode()}]')
            await ws.send(json.dumps(["EOSE", sub]))
        finally:
            self._reqs_at_once -= 1
