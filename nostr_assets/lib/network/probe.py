"""An hourly look at one relay: DNS, the address actually connected to, websocket open and read
round-trips, and its NIP-11 information document.

A probe observes the present only; ``observed_at`` says when. It never raises: every failure
becomes ``error_class``/``error_message`` (the same classes as ``WindowStats``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
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
    EMPTY_NEGENTROPY_MESSAGE,
    BadFrame,
    ClosedMessage,
    CountMessage,
    EoseMessage,
    EventMessage,
    NegErrorMessage,
    NegMessage,
    decode_relay_message,
    encode_close,
    encode_count,
    encode_neg_close,
    encode_neg_open,
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
    # What the relay was seen to do (True / False), None when not tested: a relay that could
    # not be reached, or did not answer a plain REQ, is not asked the rest.
    reads_without_auth: bool | None = None  # answered a REQ without AUTH
    requires_auth_for_read: bool | None = None  # answered it with CLOSED "auth-required:"
    answers_count: bool | None = None  # NIP-45: COUNT answered with COUNT
    answers_negentropy: bool | None = None  # NIP-77: NEG-OPEN answered with NEG-MSG

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
COUNT_SUBSCRIPTION = "probe-count"
NEGENTROPY_SUBSCRIPTION = "probe-neg"
# How long a relay may stay silent about COUNT or NEG-OPEN: a relay that supports either
# answers as fast as a REQ; one that does not often says nothing at all.
CAPABILITY_TIMEOUT = 3.0


async def _answer(ws, config: ClientConfig, timeout: float, pick: Callable[[Any], Any]) -> Any:
    """The first frame, decoded, for which ``pick`` returns something, and that something.

    Frames for other subscriptions, and frames that do not decode, are passed over: a relay
    must not be able to answer a check on behalf of another (nor fake a fast round trip).
    """
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv()
            try:
                message = decode_relay_message(frame, config.max_frame_bytes)
            except BadFrame:
                continue
            picked = pick(message)
            if picked is not None:
                return picked


def _read_answer(message: Any) -> Any:
    answer = isinstance(message, EventMessage | EoseMessage | ClosedMessage)
    return message if answer and message.subscription_id == PROBE_SUBSCRIPTION else None


async def _check_read(ws, config: ClientConfig, probe: RelayProbe) -> None:
    """A plain REQ for one note, without AUTH: its round trip, and whether the relay answered
    it or demanded AUTH (CLOSED "auth-required:") instead."""
    start = time.perf_counter()
    # kinds [1]: some relays (nostr-relay among them) answer a filter with only a limit with
    # nothing at all; every relay holds notes.
    await ws.send(encode_req(PROBE_SUBSCRIPTION, {"kinds": [1], "limit": 1}), text=True)
    answer = await _answer(ws, config, config.idle_timeout, _read_answer)
    probe.rtt_read_ms = (time.perf_counter() - start) * 1000
    await ws.send(encode_close(PROBE_SUBSCRIPTION), text=True)
    refused = isinstance(answer, ClosedMessage)
    probe.reads_without_auth = not refused
    # A refusal for another reason (restricted:, blocked: ...) says nothing about AUTH.
    probe.requires_auth_for_read = (
        False if not refused else (True if answer.prefix == "auth-required" else None)
    )


def _capability_answer(message: Any) -> tuple[str, bool] | None:
    """("count" | "negentropy", supported) when ``message`` answers one of the two checks."""
    match message:
        case CountMessage(sid) | ClosedMessage(sid) if sid == COUNT_SUBSCRIPTION:
            return "count", isinstance(message, CountMessage)
        case NegMessage(sid) | NegErrorMessage(sid) if sid == NEGENTROPY_SUBSCRIPTION:
            return "negentropy", isinstance(message, NegMessage)
    return None


async def _check_capabilities(ws, config: ClientConfig, probe: RelayProbe) -> None:
    """What the relay does rather than what its NIP-11 document claims: NIP-45 COUNT and
    NIP-77 negentropy, asked side by side on the probe's connection. A relay that supports
    either answers as fast as a REQ; silence until the timeout is a no (many relays say
    nothing about a message they do not know, some a NOTICE that names neither)."""
    # A filter of the last ten minutes: little to count or reconcile, so the answer is quick.
    recent = {"kinds": [1], "since": int(time.time()) - 600}
    await ws.send(encode_count(COUNT_SUBSCRIPTION, recent), text=True)
    opened = encode_neg_open(NEGENTROPY_SUBSCRIPTION, recent, EMPTY_NEGENTROPY_MESSAGE)
    await ws.send(opened, text=True)
    answers: dict[str, bool] = {}

    def pick(message: Any) -> dict[str, bool] | None:
        answer = _capability_answer(message)
        if answer is not None:
            answers.setdefault(*answer)
        return answers if len(answers) == 2 else None

    with suppress(TimeoutError):
        await _answer(ws, config, min(CAPABILITY_TIMEOUT, config.idle_timeout), pick)
    probe.answers_count = answers.get("count", False)
    probe.answers_negentropy = answers.get("negentropy", False)
    if probe.answers_negentropy:
        await ws.send(encode_neg_close(NEGENTROPY_SUBSCRIPTION), text=True)


async def _websocket(url: str, config: ClientConfig, probe: RelayProbe) -> None:
    try:
        ws, ip, open_ms = await open_connection(url, config)
    except WindowEnded as ended:
        probe.error_class, probe.error_message = ended.error_class, ended.message
        return
    probe.connected_ip, probe.rtt_open_ms, probe.reachable = ip, open_ms, True
    try:
        await _check_read(ws, config, probe)
        # A relay that did not answer a REQ is not asked more (its silence would say nothing
        # about COUNT or negentropy, and cost a timeout), nor one that refused it: a relay
        # demanding AUTH refuses COUNT and NEG-OPEN too, which shows nothing about NIP-45 or
        # NIP-77. Those stay not tested (None).
        if probe.reads_without_auth:
            await _check_capabilities(ws, config, probe)
    except TimeoutError:
        probe.reads_without_auth = False
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
