"""The paging strategy for one window: which REQs to send so that the window is provably
complete, or flagged ``possibly_truncated`` where it cannot be.

Relays cap results silently, treat ``until`` as inclusive or exclusive, and can hold more events
in one second than they return per REQ, so neither a short nor a full page proves completeness.
The pager therefore walks down from ``until``: it keeps the oldest second of each page in the
next query, learns the relay's ``until`` semantics from what comes back, splits a second that
fills a page by kind and then by author, and flags the window ``possibly_truncated`` where even
that cannot prove it saw everything. It assumes NIP-01's newest-first order.

It is apart from ``window_reader`` because this is the part that reasons about relays' caps and
semantics; running each REQ and counting what comes back is the reader's job.
"""

from __future__ import annotations

from typing import Any

from nostr_assets.lib.network.window_reader import Page, WindowReader

# Kinds tried when a second is too dense for one page and no kinds were asked for: the kinds
# seen in that second plus the common ones (NIP-01/02/09/18/25/57/65, comments, long-form).
DEFAULT_SPLIT_KINDS = (0, 1, 3, 4, 5, 6, 7, 16, 1059, 1111, 1984, 9734, 9735, 10002, 30023)
# Filters with thousands of authors are refused by many relays (strfry caps a filter's size).
AUTHOR_CHUNK = 100
# REQs of one sweep in flight at once on one connection: relays allow 10 to 20 subscriptions
# per connection (strfry's default is 20), and some count CLOSEs still in transit.
PARALLEL_REQS = 8
# Parallel REQs cost more REQs in all (every slice ends on its own short page), and relays
# that limit REQs per minute refuse the excess, so a window is walked in parallel slices only
# where waiting is what costs: a relay whose handshake took this long (one round trip or
# more), or a walk at the density seen of more than SEQUENTIAL_PAGES pages.
SLOW_OPEN_MS = 1000.0
SEQUENTIAL_PAGES = 4


class Pager:
    """Pages through [since, until] with the REQs of one ``WindowReader``."""

    def __init__(self, reader: WindowReader, since: int, until: int) -> None:
        self.reader, self.since, self.until = reader, since, until
        self.query = reader.query
        self.config, self.stats = reader.config, reader.stats
        self.inclusive: bool | None = None
        # Whether resolving the current dense second relied on kinds or authors seen so far.
        self.guessed = False
        # The most events per second a full page has shown: what slices are sized by.
        self.density = 0.0
        # Slices are walked side by side on a relay this slow to answer (see SLOW_OPEN_MS).
        opened = self.stats.time_to_open_ms
        self.slow = opened is not None and opened >= SLOW_OPEN_MS
        # Seconds to fetch on their own, after the walk: by then every author of the window
        # is known, which is what splitting a dense second by author can draw on.
        self.pending: list[int] = []

    def possibly_full(self, page: Page) -> bool:
        """A page that may have been cut by a cap: our limit, or the largest page seen so far.

        A relay's silent cap is unknown, so a page as large as any page it has sent may be cut,
        unless it is smaller than any cap relays use (``min_relay_cap``). That is unprovable
        either way when a single second, kind and author holds exactly that many events: such
        a leaf is flagged ``possibly_truncated`` rather than trusted.
        """
        sent = page.count + page.beyond
        if sent >= self.config.page_limit:
            return True
        return sent >= max(self.reader.max_page, self.config.min_relay_cap)

    def _until(self, second: int) -> int:
        """The ``until`` that asks for exactly ``second``: one more on a relay whose
        ``until`` is exclusive."""
        return second + 1 if self.inclusive is False else second

    def _learn(self, sent_until: int, page: Page, known_events_at_until: bool) -> None:
        if self.inclusive is not None:
            return
        if sent_until in page.seconds:
            self.inclusive = True
        elif known_events_at_until:
            # Newest first: an inclusive relay would have returned that second first.
            self.inclusive = False
        self.stats.until_inclusive = self.inclusive

    async def run(self) -> None:
        """Walk the window down from ``until``, in slices fetched in parallel once the first
        pages show how dense the relay is; then fetch the seconds too dense for one page."""
        slices = await self._first_round()
        while slices:
            if self.inclusive is None:
                # A slice's exact range needs the relay's ``until`` semantics: walk one page
                # at a time, learning them, until they are known.
                lo, u = slices[0]
                page = await self.query({"since": lo, "until": u}, lo, u)
                self._learn(u, page, u in self.reader.kinds_at)
                if self.inclusive is False:
                    # The page covered [lo, u - 1]; second u is fetched on its own.
                    self.pending.append(u)
                    u -= 1
                slices = self._next_slices([(lo, u)], [page]) + slices[1:]
                continue
            slices = self._spread(slices)
            batch = slices[:PARALLEL_REQS]
            pages = await self.reader.query_many(
                [({"since": lo, "until": self._until(u)}, lo, u) for lo, u in batch]
            )
            slices = self._next_slices(batch, pages) + slices[PARALLEL_REQS:]
        for second in sorted(set(self.pending), reverse=True):
            await self.resolve_second(second)

    async def _first_round(self) -> list[tuple[int, int]]:
        """The window's first page, asked with ``until`` one past the window: that covers its
        last second whatever the relay's ``until`` semantics (an inclusive relay also sends
        the next second, which is not counted), so a relay holding less than a page answers
        the whole window in one REQ. Returns the slices left to walk."""
        lo, u = self.since, self.until
        first = await self.query({"since": lo, "until": u + 1}, lo, u)
        if first.beyond:
            self.inclusive = self.stats.until_inclusive = True
        if not first.seconds and self.possibly_full(first):
            # The page held only the next second: the window is walked from its top, whose
            # second is then fetched on its own.
            self.pending.append(u)
            return [(lo, u - 1)] if u > lo else []
        return self._next_slices([(lo, u)], [first])

    def _next_slices(
        self, asked: list[tuple[int, int]], pages: list[Page]
    ) -> list[tuple[int, int]]:
        """What is left of each slice after its newest page: nothing when the page was not
        full; below its oldest second (asked again, since a cap may have cut it) when it was;
        below its only second when the page held one second (which is then fetched on its
        own)."""
        left = []
        for (lo, u), page in zip(asked, pages, strict=True):
            if not page.seconds or not self.possibly_full(page):
                continue
            oldest = min(page.seconds)
            self.density = max(self.density, page.count / (u - oldest + 1))
            if oldest == u:
                self.pending.append(u)
                if u - 1 >= lo:
                    left.append((lo, u - 1))
            elif page.new:
                left.append((lo, oldest))
        return left

    def _spread(self, slices: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Cut slices that will take several pages, at the density seen so far, into
        slices walked side by side, up to ``PARALLEL_REQS`` in flight."""
        if len(slices) >= PARALLEL_REQS or not self.density:
            return slices
        per_page = max(self.reader.max_page, 1)
        left = sum(self.density * (u - lo + 1) / per_page for lo, u in slices)
        if not self.slow and left <= SEQUENTIAL_PAGES:
            return slices
        spread: list[tuple[int, int]] = []
        room = PARALLEL_REQS - len(slices)
        for lo, u in slices:
            pages = int(self.density * (u - lo + 1) / per_page) + 1
            parts = min(pages, room + 1)
            room -= parts - 1
            width = (u - lo + 1) / parts
            cuts = [lo + round(width * i) for i in range(parts)] + [u + 1]
            spread.extend((cuts[i], cuts[i + 1] - 1) for i in range(parts) if cuts[i] < cuts[i + 1])
        return sorted(spread, key=lambda part: part[1], reverse=True)  # newest first

    async def query_second(self, second: int, extra: dict[str, Any]) -> Page:
        if self.inclusive is None:
            # ``until`` one past the second asks for it whatever the relay's semantics, in one
            # REQ; events of the next second, if any come back, prove ``until`` inclusive.
            page = await self.query({"since": second, "until": second + 1, **extra}, second, second)
            if page.beyond:
                self.inclusive = self.stats.until_inclusive = True
            return page
        until = self._until(second)
        return await self.query({"since": second, "until": until, **extra}, second, second)

    async def resolve_second(self, second: int) -> None:
        """Fetch every event of one second, splitting by kind then author when pages are full."""
        page = await self.query_second(second, {})
        if not self.possibly_full(page):
            return
        self.stats.split_seconds += 1
        # Splitting names kinds and authors; ones never seen in the window cannot be named
        # (filters have no NOT), so only an exact filter list or a count can prove the second.
        self.guessed = not self.reader.kinds
        done: set[int] = set()
        while todo := self._split_kinds(second) - done:
            kinds = sorted(todo)
            done.update(kinds)
            if self.inclusive is None:  # the right range for the second is not known yet
                for kind in kinds:
                    await self._resolve_kind(second, kind)
                continue
            # One REQ per kind, PARALLEL_REQS in flight at once; kinds whose page may be cut
            # are then split by author.
            until = self._until(second)
            for start in range(0, len(kinds), PARALLEL_REQS):
                group = kinds[start : start + PARALLEL_REQS]
                pages = await self.reader.query_many(
                    [
                        ({"since": second, "until": until, "kinds": [k]}, second, second)
                        for k in group
                    ]
                )
                for kind, kind_page in zip(group, pages, strict=True):
                    if self.possibly_full(kind_page):
                        await self._split_kind(second, kind)
        if self.guessed:
            await self._prove_second(second)

    async def _prove_second(self, second: int) -> None:
        """Compare what the split fetched with the relay's NIP-45 COUNT of the second."""
        until = self._until(second)
        held = await self.reader.count({"since": second, "until": until})
        fetched = self.reader.events_at[second]
        if held is None:
            self.stats.truncated(
                f"second {second} held more than a page and was split by the kinds and authors "
                f"seen ({fetched} events); the relay answers no NIP-45 COUNT to prove none is "
                "missing",
                second,
            )
        elif held > fetched:
            self.stats.truncated(
                f"second {second}: the relay counts {held} events, the split fetched {fetched} "
                "(kinds or authors never seen in the window cannot be asked for)",
                second,
            )

    def _split_kinds(self, second: int) -> set[int]:
        if self.reader.kinds:
            return set(self.reader.kinds)
        return self.reader.kinds_at.get(second, set()) | set(DEFAULT_SPLIT_KINDS)

    async def _resolve_kind(self, second: int, kind: int) -> None:
        page = await self.query_second(second, {"kinds": [kind]})
        if self.possibly_full(page):
            await self._split_kind(second, kind)

    async def _split_kind(self, second: int, kind: int) -> None:
        # Authors never seen in this window cannot be named, and there is no NOT filter: the
        # split covers the authors of this second and kind plus every author of the window.
        reader = self.reader
        self.guessed = True
        done: set[str] = set()
        # The authors seen in this second first; where the relay answers NIP-45 COUNT and the
        # count is then reached, the sweep over every author of the window (hundreds of REQs
        # on a big relay, one round trip each) is not needed.
        here = sorted(reader.authors_at.get((second, kind), set()))
        await self._resolve_author_chunks(second, kind, here)
        done.update(here)
        if self.inclusive is not None:  # a count over the wrong range would prove nothing
            until = self._until(second)
            held = await reader.count({"since": second, "until": until, "kinds": [kind]})
            if held is not None and reader.events_at_kind[(second, kind)] >= held:
                return
        while todo := (reader.authors_at.get((second, kind), set()) | reader.authors) - done:
            ordered = sorted(todo)
            done.update(ordered)
            await self._resolve_author_chunks(second, kind, ordered)

    async def _resolve_author_chunks(self, second: int, kind: int, authors: list[str]) -> None:
        """One second and kind, asked author chunk by author chunk, ``PARALLEL_REQS`` REQs in
        flight at once: a sweep over thousands of authors costs tens of round trips, not
        hundreds. A chunk whose page may be cut is halved, one REQ at a time."""
        chunks = [authors[i : i + AUTHOR_CHUNK] for i in range(0, len(authors), AUTHOR_CHUNK)]
        if self.inclusive is None:  # the right range for the second is not known yet
            for chunk in chunks:
                await self._resolve_authors(second, kind, chunk)
            return
        until = self._until(second)
        for start in range(0, len(chunks), PARALLEL_REQS):
            group = chunks[start : start + PARALLEL_REQS]
            pages = await self.reader.query_many(
                [
                    (
                        {"since": second, "until": until, "kinds": [kind], "authors": chunk},
                        second,
                        second,
                    )
                    for chunk in group
                ]
            )
            for chunk, page in zip(group, pages, strict=True):
                if self.possibly_full(page):
                    await self._split_authors(second, kind, chunk, page)

    async def _resolve_authors(self, second: int, kind: int, authors: list[str]) -> None:
        page = await self.query_second(second, {"kinds": [kind], "authors": authors})
        if self.possibly_full(page):
            await self._split_authors(second, kind, authors, page)

    async def _split_authors(self, second: int, kind: int, authors: list[str], page: Page) -> None:
        if len(authors) == 1:
            self.stats.truncated(
                f"{page.count} events at {second} for kind {kind} and one author fill a page",
                second,
            )
            return
        half = len(authors) // 2
        await self._resolve_authors(second, kind, authors[:half])
        await self._resolve_authors(second, kind, authors[half:])
