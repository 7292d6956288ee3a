"""An hourly look at one relay: DNS, the address actually connected to, websocket open and read
round-trips, and its NIP-11 information document.

A probe observes the present only; ``observed_at`` says when. It never raises: every failure
becomes ``error_class``/``error_message`` (the same classes as ``WindowStats``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import websockets

from nostr_assets.lib.failures import ErrorClass
from nostr_assets.lib.network.address_guard import AddressRefused, resolve_guarded
from nostr_assets.lib.network.connection import (
    ClientConfig,
    WindowEnded,
    describe_error,
    open_connection,
)
from nostr_assets.lib.network.nip11_fetch import Nip11Result, fetch_nip11
from nostr_assets.lib.protocol.messages import (
    BadFrame,
    ClosedMessage,
    EoseMessage,
    EventMessage,
    decode_relay_message,
    encode_close,
    encode_req,
)
from nostr_assets.lib.protocol.nip11 import Nip11Info
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl


@dataclass
class RelayProbe:
    relay_url: str
    observed_at: float  # unix seconds at the start of the probe
    dns_addresses: list[str] = field(default_factory=list)
    connected_ip: str | None = None
    reachable: bool = False
    error_class: ErrorClass | None = None
    error_message: str | None = None
    rtt_open_ms: float | None = None
    rtt_read_ms: float | None = None
    nip11: Nip11Result | None = None

    # Named as the raw.relay_snapshots columns they fill (warehouse/tables/relay_snapshots.py).
    observation_source = "probe"

    @property
    def is_reachable(self) -> bool:
        return self.reachable

    @property
    def nip11_info(self) -> Nip11Info | None:
        return self.nip11.info if self.nip11 is not None else None

    @property
    def rtt_nip11_ms(self) -> float | None:
        return self.nip11.rtt_ms if self.nip11 is not None else None

    @property
    def nip11_status_code(self) -> int | None:
        return self.nip11.status_code if self.nip11 is not None else None

    @property
    def nip11_raw(self) -> str | None:
        return self.nip11.raw if self.nip11 is not None else None

    @property
    def nip11_error(self) -> str | None:
        return self.nip11.error if self.nip11 is not None else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROBE_SUBSCRIPTION = "probe"


async def _read_rtt(ws, config: ClientConfig) -> float:
    """Time from a REQ for one event to its first EVENT, EOSE or CLOSED.

    Only answers to this REQ's subscription count: anything else a relay sends (frames queued
    before the REQ, other subscriptions) would make the round trip look faster than it is.
    """
    start = time.perf_counter()
    # kinds [1]: some relays (nostr-relay among them) answer a filter with only a limit with
    # nothing at all; every relay holds notes.
    await ws.send(encode_req(PROBE_SUBSCRIPTION, {"kinds": [1], "limit": 1}), text=True)
    async with asyncio.timeout(config.idle_timeout):
        while True:
            frame = await ws.recv()
            try:
                message = decode_relay_message(frame, config.max_frame_bytes)
            except BadFrame:
                continue
            if (
                isinstance(message, EventMessage | EoseMessage | ClosedMessage)
                and message.subscription_id == PROBE_SUBSCRIPTION
            ):
                elapsed = (time.perf_counter() - start) * 1000
                await ws.send(encode_close(PROBE_SUBSCRIPTION), text=True)
                return elapsed


async def _websocket(url: str, config: ClientConfig, probe: RelayProbe) -> None:
    try:
        ws, ip, open_ms = await open_connection(url, config)
    except WindowEnded as ended:
        probe.error_class, probe.error_message = ended.error_class, ended.message
        return
    probe.connected_ip, probe.rtt_open_ms, probe.reachable = ip, open_ms, True
    try:
        probe.rtt_read_ms = await _read_rtt(ws, config)
    except TimeoutError:
        probe.error_class = ErrorClass.TIMEOUT_IDLE
        probe.error_message = f"no answer to a REQ within {config.idle_timeout}s"
    except websockets.ConnectionClosed as closed:
        probe.error_class, probe.error_message = (
            ErrorClass.CONNECTION_CLOSED,
            describe_error(closed),
        )
    finally:
        await ws.close()


async def probe_relay(url: str, *, config: ClientConfig) -> RelayProbe:
    """Probe one relay (its websocket and NIP-11 document concurrently)."""
    probe = RelayProbe(relay_url=url, observed_at=time.time())
    try:
        async with asyncio.timeout(config.total_timeout):
            try:
                probe.dns_addresses = await resolve_guarded(
                    url, config.allow_private, config.connect_timeout
                )
            except InvalidRelayUrl as error:
                probe.error_class, probe.error_message = ErrorClass.INVALID_URL, error.reason
                return probe
            except AddressRefused as error:
                dns = error.reason.startswith("dns")
                probe.error_class = ErrorClass.DNS_FAILED if dns else ErrorClass.REFUSED_ADDRESS
                probe.error_message = str(error)
                return probe
            nip11, _ = await asyncio.gather(
                fetch_nip11(
                    url,
                    allow_private=config.allow_private,
                    timeout=config.connect_timeout,
                    max_bytes=config.nip11_max_bytes,
                ),
                _websocket(url, config, probe),
            )
            probe.nip11 = nip11
    except TimeoutError:
        probe.error_class = ErrorClass.TIMEOUT_TOTAL
        probe.error_message = f"probe not finished after {config.total_timeout}s"
    except Exception as error:  # a bug here must not stop the other relays' snapshots
        probe.error_class, probe.error_message = ErrorClass.INTERNAL_ERROR, describe_error(error)
    return probe
