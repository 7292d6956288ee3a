"""One relay, one time window: connect through the address guard, page through the window with
REQ, and report what the relay did (``WindowStats``).

Relays cap results silently, treat ``until`` as inclusive or exclusive, and can hold more events
in one second than they return per REQ, so neither a short nor a full page proves completeness.
The pager (``_Pager``) therefore walks down from ``until``: it keeps the oldest second of each
page in the next query, learns the relay's ``until`` semantics from what comes back, splits a
second that fills a page by kind and then by author, and flags the window ``possibly_truncated``
where even that cannot prove it saw everything. It assumes NIP-01's newest-first order.

Nothing here raises for relay behaviour: errors end the window, the events received so far are
kept, and the error is recorded in the stats.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import CloseCode

from nostr_assets.lib.event import Event, InvalidEvent, decode_event
from nostr_assets.lib.messages import (
    AuthMessage,
    BadFrame,
    ClosedMessage,
    EoseMessage,
    EventMessage,
    NoticeMessage,
    decode_relay_message,
    encode_close,
    encode_req,
)
from nostr_assets.lib.relay_url import (
    AddressRefused,
    InvalidRelayUrl,
    host_and_port,
    resolve_guarded,
)

Sink = Callable[[str, Event, float], "str | None"]

MAX_NOTICES = 20
# Kinds tried when a second is too dense for one page and no kinds were asked for: the kinds
# seen in that second plus the common ones (NIP-01/02/09/18/25/57/65, comments, long-form).
DEFAULT_SPLIT_KINDS = (0, 1, 3, 4, 5, 6, 7, 16, 1059, 1111, 1984, 9734, 9735, 10002, 30023)
# Filters with thousands of authors are refused by many relays (strfry caps a filter's size).
AUTHOR_CHUNK = 100
_INVALID_ID_REASONS = {"id_mismatch"}
_INVALID_SIG_REASONS = {"bad_signature", "invalid_pubkey"}


@dataclass
class ClientConfig:
    """Limits and timeouts (seconds) for one relay connection; the defaults suit the crawl."""

    connect_timeout: float = 10.0
    idle_timeout: float = 15.0
    total_timeout: float = 300.0
    max_frame_bytes: int = 2**20
    page_limit: int = 500
    max_events_per_window: int = 500_000
    allow_private: bool = False
    # AUTH (NIP-42) challenges are recorded; answering needs a key this crawler does not hold.
    answer_auth: bool = False
    user_agent: str = "nostr-analytics/0.1 (+crawler)"
    rate_limit_retries: int = 2
    rate_limit_backoff: float = 2.0  # seconds, doubled on each retry


@dataclass
class WindowStats:
    """What one relay did for one window: one row per relay and window."""

    relay_url: str
    since: int
    until: int
    events: int = 0
    duplicates: int = 0
    out_of_filter: int = 0
    invalid: Counter = field(default_factory=Counter)
    invalid_ids: int = 0
    invalid_signatures: int = 0
    bad_frames: Counter = field(default_factory=Counter)
    pages: int = 0
    split_seconds: int = 0
    until_inclusive: bool | None = None
    possibly_truncated: bool = False
    truncation_note: str | None = None
    eose_received: bool = False
    closed_prefix: str | None = None
    closed_message: str | None = None
    notices: list[str] = field(default_factory=list)
    auth_challenge: str | None = None
    bytes_received: int = 0
    time_to_open_ms: float | None = None
    time_to_first_event_ms: float | None = None
    connected_ip: str | None = None
    error_class: str | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["invalid"] = dict(self.invalid)
        data["bad_frames"] = dict(self.bad_frames)
        return data

    def truncated(self, note: str) -> None:
        self.possibly_truncated = True
        notes = [] if self.truncation_note is None else self.truncation_note.split("; ")
        if note not in notes and len(notes) < 10:
            self.truncation_note = "; ".join([*notes, note])


class WindowEnded(Exception):
    """Ends a window early; the events so far are kept and the reason is recorded."""

    def __init__(self, error_class: str, message: str = "") -> None:
        super().__init__(f"{error_class}: {message}")
        self.error_class = error_class
        self.message = message


def describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


async def open_connection(url: str, config: ClientConfig) -> tuple[ClientConnection, str, float]:
    """Resolve through the guard and open a websocket to a checked address.

    Returns (connection, connected ip, open time in ms) or raises ``WindowEnded``. The TCP
    connection goes to the IP the guard approved (``host=``), with the name kept for the HTTP
    Host header and TLS (``server_hostname``), so a DNS answer that changes between the check
    and the connect (rebinding) cannot redirect the crawler.
    """
    try:
        host, port, tls = host_and_port(url)
        addresses = await resolve_guarded(url, config.allow_private, config.connect_timeout)
    except InvalidRelayUrl as error:
        raise WindowEnded("invalid_url", error.reason) from None
    except AddressRefused as error:
        if error.reason.startswith("dns"):
            raise WindowEnded("dns_failed", str(error)) from None
        raise WindowEnded("refused_address", str(error)) from None
    last = WindowEnded("os_error", "no address")
    for ip in addresses:
        start = time.perf_counter()
        extra: dict[str, Any] = {"server_hostname": host} if tls else {}
        try:
            ws = await connect(
                url,
                host=ip,
                port=port,
                proxy=None,
                open_timeout=config.connect_timeout,
                max_size=config.max_frame_bytes,
                ping_interval=None,
                close_timeout=1,
                user_agent_header=config.user_agent,
                max_queue=64,
                **extra,
            )
        except TimeoutError:
            last = WindowEnded("timeout_connect", f"no websocket after {config.connect_timeout}s")
        except websockets.InvalidHandshake as error:
            last = WindowEnded("handshake_failed", describe_error(error))
        except ssl.SSLError as error:
            last = WindowEnded("tls_failed", describe_error(error))
        except ConnectionRefusedError as error:
            last = WindowEnded("connection_refused", describe_error(error))
        except OSError as error:
            last = WindowEnded("os_error", describe_error(error))
        else:
            return ws, ip, (time.perf_counter() - start) * 1000
    raise last


@dataclass
class _Page:
    count: int = 0  # events of the subscription, valid or not, inside the asked range
    new: int = 0  # of which not seen before in this window
    seconds: list[int] = field(default_factory=list)


class _Pager:
    """The REQ conversation of one window over one open connection."""

    def __init__(self, ws, url, since, until, kinds, config, sink, stats: WindowStats):
        self.ws, self.url, self.since, self.until = ws, url, since, until
        self.kinds = sorted(set(kinds)) if kinds else None
        self.config, self.sink, self.stats = config, sink, stats
        self.seen: set[str] = set()
        self.seen_invalid: set[bytes] = set()
        self.kinds_at: dict[int, set[int]] = {}
        self.authors_at: dict[tuple[int, int], set[str]] = {}
        self.authors: set[str] = set()
        self.max_page = 0
        self.inclusive: bool | None = None
        self.sub_counter = 0
        self.started = time.perf_counter()
        self.idle_deadline_s = config.idle_timeout

    # ---- reading one subscription ----------------------------------------------------------

    async def _recv(self) -> bytes:
        try:
            async with asyncio.timeout(self.config.idle_timeout):
                return await self.ws.recv(decode=False)  # bytes: msgspec parses them as is
        except TimeoutError:
            raise WindowEnded("timeout_idle", f"no frame for {self.config.idle_timeout}s") from None

    async def query(self, flt: dict[str, Any], lo: int, hi: int) -> _Page:
        """Run one REQ to its EOSE; count events with lo <= created_at <= hi."""
        if self.kinds and "kinds" not in flt:
            flt = {**flt, "kinds": self.kinds}
        flt["limit"] = self.config.page_limit
        for attempt in range(self.config.rate_limit_retries + 1):
            self.sub_counter += 1
            sub = f"w{self.sub_counter}"
            page = _Page()
            await self.ws.send(encode_req(sub, flt), text=True)
            closed = await self._read_subscription(sub, page, lo, hi, flt.get("kinds"))
            self.stats.pages += 1
            if closed is None:
                await self.ws.send(encode_close(sub), text=True)
                self.max_page = max(self.max_page, page.count)
                return page
            if closed.prefix != "rate-limited" or attempt == self.config.rate_limit_retries:
                raise WindowEnded("closed_by_relay", closed.message[:300])
            await asyncio.sleep(self.config.rate_limit_backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def _read_subscription(self, sub, page, lo, hi, kinds) -> ClosedMessage | None:
        while True:
            frame = await self._recv()
            self.stats.bytes_received += len(frame)
            try:
                message = decode_relay_message(frame)
            except BadFrame as error:
                self.stats.bad_frames[error.reason] += 1
                continue
            match message:
                case EventMessage(sid, raw) if sid == sub:
                    self._event(raw, page, lo, hi, kinds)
                case EoseMessage(sid) if sid == sub:
                    self.stats.eose_received = True
                    return None
                case ClosedMessage(sid, text) if sid == sub:
                    self.stats.closed_prefix = message.prefix or "unknown"
                    self.stats.closed_message = text[:300]
                    return message
                case NoticeMessage(text):
                    if len(self.stats.notices) < MAX_NOTICES:
                        self.stats.notices.append(text[:300])
                case AuthMessage(challenge):
                    self.stats.auth_challenge = challenge[:200]
            # Anything else (OK, COUNT, frames of subscriptions already closed) is ignored.

    def _event(self, raw: bytes, page: _Page, lo: int, hi: int, kinds) -> None:
        stats = self.stats
        if stats.time_to_first_event_ms is None:
            stats.time_to_first_event_ms = (time.perf_counter() - self.started) * 1000
        try:
            event = decode_event(raw)
        except InvalidEvent as error:
            stats.invalid[error.reason] += 1
            return
        if not lo <= event.created_at <= hi or (kinds and event.kind not in kinds):
            stats.out_of_filter += 1  # a relay ignoring the filter: not this window's data
            return
        page.count += 1
        page.seconds.append(event.created_at)
        if event.id in self.seen:
            stats.duplicates += 1
            return
        digest = hashlib.sha256(raw).digest()
        if digest in self.seen_invalid:
            stats.duplicates += 1
            return
        page.new += 1
        self.kinds_at.setdefault(event.created_at, set()).add(event.kind)
        self.authors_at.setdefault((event.created_at, event.kind), set()).add(event.pubkey)
        self.authors.add(event.pubkey)
        reason = self.sink(self.url, event, time.time())
        if reason is None:
            self.seen.add(event.id)
            stats.events += 1
        else:
            self.seen_invalid.add(digest)
            stats.invalid[reason] += 1
            stats.invalid_ids += reason in _INVALID_ID_REASONS
            stats.invalid_signatures += reason in _INVALID_SIG_REASONS
        if len(self.seen) + len(self.seen_invalid) >= self.config.max_events_per_window:
            stats.truncated(f"max_events_per_window ({self.config.max_events_per_window})")
            raise WindowEnded("max_events", "event cap for one window reached")

    # ---- paging ------------------------------------------------------------------------------

    def possibly_full(self, page: _Page) -> bool:
        """A page that may have been cut by a cap: our limit, or the largest page seen so far.

        A relay's silent cap is unknown, so a page as large as any page it has sent may be cut.
        That is unprovable either way when a single second, kind and author holds exactly that
        many events: such a leaf is flagged ``possibly_truncated`` rather than trusted.
        """
        return page.count > 0 and page.count >= min(self.config.page_limit, self.max_page)

    def _learn(self, sent_until: int, page: _Page, known_events_at_until: bool) -> None:
        if self.inclusive is not None:
            return
        if sent_until in page.seconds:
            self.inclusive = True
        elif known_events_at_until:
            # Newest first: an inclusive relay would have returned that second first.
            self.inclusive = False
        self.stats.until_inclusive = self.inclusive

    async def run(self) -> None:
        lo, u = self.since, self.until
        # Seconds to fetch on their own, after the walk: by then every author of the window
        # is known, which is what splitting a dense second by author can draw on.
        pending: list[int] = []
        while u >= lo:
            sent = u + 1 if self.inclusive is False else u
            page = await self.query({"since": lo, "until": sent}, lo, u)
            was_unknown = self.inclusive is None
            self._learn(sent, page, u in self.kinds_at)
            top = u
            if was_unknown and self.inclusive is False:
                # The page covered [lo, u - 1]; second u, cut by the previous page, is fetched
                # on its own and the page is used as it is.
                pending.append(u)
                top = u - 1
            if not page.seconds:
                break
            if min(page.seconds) == top:
                # The whole page is one second: it may hold more than one page can carry.
                if self.possibly_full(page):
                    pending.append(top)
                u = top - 1
                continue
            if page.new == 0:
                break
            u = min(page.seconds)
        if self.inclusive is not True:
            # An exclusive (or unproven) relay never answered for the window's last second.
            pending.append(self.until)
        for second in dict.fromkeys(pending):
            await self.resolve_second(second)

    async def query_second(self, second: int, extra: dict[str, Any]) -> _Page:
        if self.inclusive is not False:
            page = await self.query({"since": second, "until": second, **extra}, second, second)
            if page.count or self.inclusive:
                if self.inclusive is None and page.count:
                    self.inclusive = self.stats.until_inclusive = True
                return page
        page = await self.query({"since": second, "until": second + 1, **extra}, second, second)
        if self.inclusive is None and page.count:
            self.inclusive = self.stats.until_inclusive = False
        return page

    async def resolve_second(self, second: int) -> None:
        """Fetch every event of one second, splitting by kind then author when pages are full."""
        page = await self.query_second(second, {})
        if not self.possibly_full(page):
            return
        self.stats.split_seconds += 1
        done: set[int] = set()
        while todo := self._split_kinds(second) - done:
            for kind in sorted(todo):
                done.add(kind)
                await self._resolve_kind(second, kind)

    def _split_kinds(self, second: int) -> set[int]:
        if self.kinds:
            return set(self.kinds)
        return self.kinds_at.get(second, set()) | set(DEFAULT_SPLIT_KINDS)

    async def _resolve_kind(self, second: int, kind: int) -> None:
        page = await self.query_second(second, {"kinds": [kind]})
        if not self.possibly_full(page):
            return
        # Authors never seen in this window cannot be named, and there is no NOT filter: the
        # split covers the authors of this second and kind plus every author of the window.
        done: set[str] = set()
        while todo := (self.authors_at.get((second, kind), set()) | self.authors) - done:
            ordered = sorted(todo)
            done.update(ordered)
            for start in range(0, len(ordered), AUTHOR_CHUNK):
                await self._resolve_authors(second, kind, ordered[start : start + AUTHOR_CHUNK])

    async def _resolve_authors(self, second: int, kind: int, authors: list[str]) -> None:
        page = await self.query_second(second, {"kinds": [kind], "authors": authors})
        if not self.possibly_full(page):
            return
        if len(authors) == 1:
            self.stats.truncated(
                f"{page.count} events at {second} for kind {kind} and one author fill a page"
            )
            return
        half = len(authors) // 2
        await self._resolve_authors(second, kind, authors[:half])
        await self._resolve_authors(second, kind, authors[half:])


async def fetch_window(
    url: str,
    since: int,
    until: int,
    kinds: Iterable[int] | None = None,
    *,
    config: ClientConfig,
    sink: Sink,
) -> WindowStats:
    """Fetch every event with since <= created_at <= until from one relay into ``sink``.

    ``sink(relay_url, event, seen_at)`` returns None for a valid event or a refusal reason
    (``IngestState.accept`` fits). Never raises for anything the relay does.
    """
    stats = WindowStats(relay_url=url, since=since, until=until)
    try:
        async with asyncio.timeout(config.total_timeout):
            await _fetch(url, since, until, kinds, config, sink, stats)
    except TimeoutError:
        stats.error_class = "timeout_total"
        stats.error_message = f"window not finished after {config.total_timeout}s"
    except WindowEnded as ended:
        stats.error_class, stats.error_message = ended.error_class, ended.message
    except websockets.ConnectionClosed as closed:
        too_large = closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG
        if too_large:
            stats.bad_frames["too_large"] += 1
        stats.error_class = "too_large" if too_large else "connection_closed"
        stats.error_message = describe_error(closed)
    except OSError as error:
        stats.error_class, stats.error_message = "os_error", describe_error(error)
    except Exception as error:  # a bug here must not cost the other relays their crawl
        stats.error_class, stats.error_message = "internal_error", describe_error(error)
    return stats


async def _fetch(url, since, until, kinds, config, sink, stats: WindowStats) -> None:
    ws, ip, open_ms = await open_connection(url, config)
    stats.connected_ip, stats.time_to_open_ms = ip, open_ms
    try:
        await _Pager(ws, url, since, until, kinds, config, sink, stats).run()
    finally:
        await ws.close()
