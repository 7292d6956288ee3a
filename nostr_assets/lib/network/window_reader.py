"""Reading REQ subscriptions of one window over an open connection, and recording what the relay
did in ``WindowStats``.

Its one job is a single REQ run to its EOSE (or CLOSED): send it, read frames, decode and
deduplicate the events across the whole window, hand new ones to the sink, count everything
odd, and remember what was seen (kinds and authors per second, the largest page). Which REQs to
send is the pager's business (``pagination``); this module only has to make each one's answer
exact and cheap to reason about.

Nothing here raises for relay behaviour except ``WindowEnded``, which ends the window with the
events received so far kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from nostr_assets.lib.failures import ErrorClass, EventRefusal
from nostr_assets.lib.network.connection import ClientConfig, WindowEnded
from nostr_assets.lib.protocol.event import Event, InvalidEvent, decode_event, encode_event
from nostr_assets.lib.protocol.ingest import OVER_BUDGET
from nostr_assets.lib.protocol.messages import (
    AuthMessage,
    BadFrame,
    ClosedMessage,
    CountMessage,
    EoseMessage,
    EventMessage,
    NoticeMessage,
    decode_event_frame,
    decode_relay_message,
    encode_close,
    encode_count,
    encode_req,
)

Sink = Callable[[str, Event, float], "str | None"]

MAX_NOTICES = 20
# How long to wait for a NIP-45 COUNT answer before taking the relay for one without it.
COUNT_TIMEOUT = 3.0
_INVALID_ID_REASONS = {EventRefusal.ID_MISMATCH}
_INVALID_SIG_REASONS = {EventRefusal.BAD_SIGNATURE, EventRefusal.INVALID_PUBKEY}


@dataclass
class WindowStats:
    """What one relay did for one window: one row per relay and window."""

    relay_url: str
    since: int
    until: int
    events: int = 0
    duplicates: int = 0
    out_of_filter: int = 0
    # EVENTs for no open subscription: one never opened, or one already ended (after its EOSE
    # or CLOSED, or ours). Not taken, since no filter vouches for them, but counted.
    stray_events: int = 0
    invalid: Counter = field(default_factory=Counter)
    invalid_ids: int = 0
    invalid_signatures: int = 0
    bad_frames: Counter = field(default_factory=Counter)
    pages: int = 0
    split_seconds: int = 0
    until_inclusive: bool | None = None
    possibly_truncated: bool = False
    truncation_note: str | None = None
    # The seconds a flag concerns, when it concerns some seconds only (a dense second the
    # split could not prove); empty with the flag set: the whole window may be cut.
    truncated_seconds: set[int] = field(default_factory=set)
    eose_received: bool = False
    closed_prefix: str | None = None
    closed_message: str | None = None
    notices: list[str] = field(default_factory=list)
    auth_challenge: str | None = None
    bytes_received: int = 0
    time_to_open_ms: float | None = None
    time_to_first_event_ms: float | None = None
    elapsed_ms: float | None = None  # the whole window, connection included
    connected_ip: str | None = None
    error_class: ErrorClass | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["invalid"] = dict(self.invalid)
        data["bad_frames"] = dict(self.bad_frames)
        data["truncated_seconds"] = sorted(self.truncated_seconds)
        return data

    def truncated(self, note: str, second: int | None = None) -> None:
        if second is not None and (self.truncated_seconds or not self.possibly_truncated):
            self.truncated_seconds.add(second)
        elif second is None:
            self.truncated_seconds.clear()  # the whole window now
        self.possibly_truncated = True
        notes = [] if self.truncation_note is None else self.truncation_note.split("; ")
        if note not in notes and len(notes) < 10:
            self.truncation_note = "; ".join([*notes, note])


@dataclass
class Page:
    count: int = 0  # events of the subscription, valid or not, inside the asked range
    # Events asked for but past the range: sent by a relay whose ``until`` is inclusive when
    # the filter's ``until`` is one past the range. They take room in the page all the same.
    beyond: int = 0
    new: int = 0  # of which not seen before in this window
    seconds: list[int] = field(default_factory=list)


@dataclass
class _Sub:
    """One subscription being read: its page, the range counted, its kinds, its filter."""

    page: Page
    lo: int
    hi: int
    kinds: list[int] | None
    filter: dict[str, Any]


class WindowReader:
    """The subscriptions of one window over one open connection, and what they have shown."""

    def __init__(
        self,
        ws: ClientConnection,
        url: str,
        kinds: Iterable[int] | None,
        config: ClientConfig,
        sink: Sink,
        stats: WindowStats,
    ) -> None:
        self.ws, self.url = ws, url
        self.kinds = sorted(set(kinds)) if kinds else None
        self.config, self.sink, self.stats = config, sink, stats
        self.seen: set[str] = set()
        self.seen_invalid: set[bytes] = set()
        # What the pager can split a dense second by: kinds per second, authors per second and
        # kind, every author of the window.
        self.kinds_at: dict[int, set[int]] = {}
        self.authors_at: dict[tuple[int, int], set[str]] = {}
        self.authors: set[str] = set()
        # Distinct events (valid or not) fetched per second: what a NIP-45 COUNT is checked against.
        self.events_at: Counter[int] = Counter()
        self.events_at_kind: Counter[tuple[int, int]] = Counter()
        self.count_unsupported = False
        self.max_page = 0
        self.sub_counter = 0
        self.started = time.perf_counter()
        # Rate limits: REQs the relay accepted, seconds paused after CLOSED "rate-limited:",
        # and the interval between REQs that the relay showed it accepts (0: not limited yet).
        self.accepted_reqs = 0
        self.paused = 0.0
        self.pace = 0.0
        self.last_req = 0.0

    async def _frames(self):
        """The relay's frames as bytes (msgspec parses them as is), until ``idle_timeout``
        passes without one, or the window's byte budget is spent.

        One timer for the whole stream, pushed back at most every half idle period rather
        than armed and cancelled per frame (most frames are copies already seen, and the timer
        was their biggest cost): a silent relay is cut between 1 and 1.5 idle periods after
        its last frame.
        """
        idle = self.config.idle_timeout
        loop = asyncio.get_running_loop()
        stats = self.stats
        try:
            # The deadline spans yields: safe because the consumer (_read_frames) awaits
            # nothing else while it iterates, so a timeout always lands in recv() below.
            async with asyncio.timeout(idle) as deadline:
                while True:
                    frame = await self.ws.recv(decode=False)
                    now = loop.time()
                    when = deadline.when()
                    if when is not None and when - now < idle:
                        deadline.reschedule(now + idle * 1.5)
                    stats.bytes_received += len(frame)
                    if stats.bytes_received > self.config.max_window_bytes:
                        stats.truncated(f"max_window_bytes ({self.config.max_window_bytes})")
                        raise WindowEnded(
                            ErrorClass.BYTE_BUDGET,
                            f"more than {self.config.max_window_bytes} bytes for one window",
                        )
                    yield frame
        except TimeoutError:
            raise WindowEnded(ErrorClass.TIMEOUT_IDLE, f"no frame for {idle}s") from None

    def _prepared(self, flt: dict[str, Any]) -> dict[str, Any]:
        """The filter as sent: the window's kinds unless it names its own, and our limit."""
        if self.kinds and "kinds" not in flt:
            flt = {**flt, "kinds": self.kinds}
        return {**flt, "limit": self.config.page_limit}

    async def query(self, flt: dict[str, Any], lo: int, hi: int) -> Page:
        """Run one REQ to its EOSE; count events with lo <= created_at <= hi."""
        flt = self._prepared(flt)
        pause = self.config.rate_limit_backoff
        while True:
            await self._keep_pace()
            self.sub_counter += 1
            sub = f"w{self.sub_counter}"
            page = Page()
            await self.ws.send(encode_req(sub, flt), text=True)
            ended = await self._read_subscriptions({sub: _Sub(page, lo, hi, flt.get("kinds"), flt)})
            closed = ended.get(sub)
            self.stats.pages += 1
            if closed is None:
                self.accepted_reqs += 1
                await self.ws.send(encode_close(sub), text=True)
                self.max_page = max(self.max_page, page.count + page.beyond)
                if pause > self.config.rate_limit_backoff:
                    # It took a pause to get through: from now on, ask no faster than the
                    # relay has let us so far.
                    self.pace = (time.perf_counter() - self.started) / self.accepted_reqs
                return page
            if (
                closed.prefix != "rate-limited"
                or self.paused + pause > self.config.rate_limit_max_wait
            ):
                raise WindowEnded(ErrorClass.CLOSED_BY_RELAY, closed.message[:300])
            await asyncio.sleep(pause)
            self.paused += pause
            pause = min(pause * 2, self.config.rate_limit_max_pause)

    async def _keep_pace(self) -> None:
        """Wait out the pace a rate-limiting relay has shown it accepts, since our last REQ."""
        if self.pace:
            wait = self.last_req + self.pace - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        self.last_req = time.perf_counter()

    async def count(self, flt: dict[str, Any]) -> int | None:
        """NIP-45 COUNT of ``flt``, or None when the relay does not answer one.

        Relays without NIP-45 ignore the message, answer CLOSED or NOTICE; the wait for an
        answer is therefore short (COUNT is a single indexed query where it is supported).
        """
        if self.count_unsupported:
            return None
        if self.kinds and "kinds" not in flt:
            flt = {**flt, "kinds": self.kinds}
        self.sub_counter += 1
        sub = f"c{self.sub_counter}"
        await self.ws.send(encode_count(sub, flt), text=True)
        try:
            async with asyncio.timeout(min(COUNT_TIMEOUT, self.config.idle_timeout)):
                while True:
                    frame = await self.ws.recv(decode=False)
                    self.stats.bytes_received += len(frame)
                    try:
                        message = decode_relay_message(frame)
                    except BadFrame:
                        continue  # counted where it matters: in subscriptions
                    match message:
                        case CountMessage(sid, n) if sid == sub:
                            return n
                        case ClosedMessage(sid) if sid == sub:
                            break
                        case NoticeMessage():
                            break
        except TimeoutError:
            pass
        self.count_unsupported = True  # ask once per window, not once per dense second
        return None

    async def _read_subscriptions(self, subs: dict[str, _Sub]) -> dict[str, ClosedMessage]:
        """Read frames until every subscription of ``subs`` has ended (EOSE or CLOSED);
        return the CLOSED ones. Events go to their own subscription's page."""
        pending = dict(subs)
        closed: dict[str, ClosedMessage] = {}
        frames = self._frames()
        try:
            async for frame in frames:
                fast = decode_event_frame(frame)
                if fast is not None:
                    target = pending.get(fast[0])
                    if target is not None:
                        self._event(fast[1], target)
                    else:
                        self.stats.stray_events += 1
                    continue
                try:
                    message = decode_relay_message(frame)
                except BadFrame as error:
                    self.stats.bad_frames[error.reason] += 1
                    continue
                match message:
                    case EventMessage(sid, raw) if sid in pending:
                        target = pending[sid]
                        try:
                            event = decode_event(raw)
                        except InvalidEvent as error:
                            self._first_event_arrived()
                            self.stats.invalid[error.reason] += 1
                            continue
                        self._event(event, target)
                    case EventMessage():
                        self.stats.stray_events += 1
                    case EoseMessage(sid) if sid in pending:
                        self.stats.eose_received = True
                        del pending[sid]
                    case ClosedMessage(sid, text) if sid in pending:
                        self.stats.closed_prefix = message.prefix or "unknown"
                        self.stats.closed_message = text[:300]
                        closed[sid] = message
                        del pending[sid]
                    case NoticeMessage(text):
                        if len(self.stats.notices) < MAX_NOTICES:
                            self.stats.notices.append(text[:300])
                    case AuthMessage(challenge):
                        self.stats.auth_challenge = challenge[:200]
                # Anything else (OK, COUNT, EOSE or CLOSED of other subscriptions) is ignored.
                if not pending:
                    return closed
        finally:
            await frames.aclose()
        raise AssertionError("the frame stream ends only by raising")

    async def query_many(self, queries: list[tuple[dict[str, Any], int, int]]) -> list[Page]:
        """Several REQs in flight at once on this connection, each to its EOSE: one round
        trip for the lot instead of one each (a dense second swept by author takes dozens).
        A REQ the relay refuses (CLOSED, rate limits included) is asked again on its own,
        with ``query``'s retries."""
        subs: dict[str, _Sub] = {}
        await self._keep_pace()
        for flt, lo, hi in queries:
            sent = self._prepared(flt)
            self.sub_counter += 1
            sub = f"w{self.sub_counter}"
            subs[sub] = _Sub(Page(), lo, hi, sent.get("kinds"), flt)
            await self.ws.send(encode_req(sub, sent), text=True)
        closed = await self._read_subscriptions(subs)
        pages = []
        for sub, target in subs.items():
            if sub in closed:
                pages.append(await self.query(dict(target.filter), target.lo, target.hi))
                continue
            self.stats.pages += 1
            await self.ws.send(encode_close(sub), text=True)
            self.max_page = max(self.max_page, target.page.count + target.page.beyond)
            pages.append(target.page)
        return pages

    def _first_event_arrived(self) -> None:
        if self.stats.time_to_first_event_ms is None:
            self.stats.time_to_first_event_ms = (time.perf_counter() - self.started) * 1000

    def _event(self, event: Event, sub: _Sub) -> None:
        stats, page = self.stats, sub.page
        self._first_event_arrived()
        in_kinds = not sub.kinds or event.kind in sub.kinds
        if not (in_kinds and sub.lo <= event.created_at <= sub.hi):
            if in_kinds and sub.hi < event.created_at <= sub.filter.get("until", sub.hi):
                # Asked for (an ``until`` one past the range, in case the relay's ``until`` is
                # exclusive) but not counted: the relay's ``until`` is inclusive.
                page.beyond += 1
            else:
                stats.out_of_filter += 1  # a relay ignoring the filter: not this window's data
            return
        page.count += 1
        page.seconds.append(event.created_at)
        if event.id in self.seen:
            stats.duplicates += 1
            return
        # Copies refused before are recognised by their content (canonical bytes), not by the
        # id they claim: a forged copy must not hide the real event, nor cost a second verify.
        # Hashed only once this window has refused something: most windows never do.
        digest = hashlib.sha256(encode_event(event)).digest() if self.seen_invalid else None
        if digest is not None and digest in self.seen_invalid:
            stats.duplicates += 1
            return
        page.new += 1
        self.events_at[event.created_at] += 1
        self.events_at_kind[(event.created_at, event.kind)] += 1
        self.kinds_at.setdefault(event.created_at, set()).add(event.kind)
        self.authors_at.setdefault((event.created_at, event.kind), set()).add(event.pubkey)
        self.authors.add(event.pubkey)
        reason = self.sink(self.url, event, time.time())
        if reason is None:
            self.seen.add(event.id)
            stats.events += 1
        elif reason == OVER_BUDGET:
            stats.truncated("max_held_bytes: the crawl holds as many events as it may")
            raise WindowEnded(ErrorClass.BYTE_BUDGET, "the crawl's budget for held events is spent")
        else:
            self.seen_invalid.add(digest or hashlib.sha256(encode_event(event)).digest())
            stats.invalid[reason] += 1
            stats.invalid_ids += reason in _INVALID_ID_REASONS
            stats.invalid_signatures += reason in _INVALID_SIG_REASONS
        if len(self.seen) + len(self.seen_invalid) >= self.config.max_events_per_window:
            stats.truncated(f"max_events_per_window ({self.config.max_events_per_window})")
            raise WindowEnded(ErrorClass.MAX_EVENTS, "event cap for one window reached")
