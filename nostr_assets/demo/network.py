"""The demo's network: a small Nostr world of the hours before ``end``, built from a seed.

Forty-four authors post notes and replies with a daily rhythm, react, repost and zap (receipts
with real BOLT-11 amounts); six write long-form articles and edit some; everyone keeps a
profile, a contact list and a NIP-65 relay list; a few delete what they posted, and one tries
to delete someone else's note, which NIP-09 ignores. Two monitors publish NIP-66 reports on
every relay, except during the hours one relay was down. Four relays with different caps hold
it the way the outbox model spreads events: each event on its author's write relays (those of
their kind-10002 list), profiles and lists also on an indexer, and a share of everything on
the big relay. So the relays overlap, none holds everything, and each holds events no other
does.

Pure: the same seed, ``end`` and relay URLs give byte-identical events (keys and BIP-340
signatures included). The URLs are arguments because the events name the relays (relay lists,
hints, monitor reports) and the demo's relays listen on ports chosen when it starts.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from coincurve import PrivateKey

from nostr_assets.demo import kinds
from nostr_assets.demo.content import REACTIONS, contact_list, profile, text
from nostr_assets.lib.protocol.event import Event, encode_event, sign_event

HOUR = 3600
DEMO_HOURS = 48
AUTHORS = 44
# Fixed BIP-340 auxiliary randomness: signatures are then a function of key and message.
_AUX = bytes(32)
# Hours (counted from the start) when the vault relay was down: no monitor reported it then.
VAULT_OUTAGE = range(30, 34)


@dataclass(frozen=True)
class RelayProfile:
    name: str  # its folder, and the name in its NIP-11 document
    description: str
    max_limit: int  # nostr-relay's silent cap on the events one REQ returns


RELAY_PROFILES = (
    RelayProfile("hub", "A big general-purpose relay: most authors write here", 500),
    RelayProfile("nihongo", "A community relay for Japanese speakers", 100),
    RelayProfile("index", "An indexer: profiles, follows, relay lists and articles", 50),
    RelayProfile("vault", "A small relay of a few power users and two monitors", 20),
)


@dataclass(frozen=True)
class DemoRelay:
    profile: RelayProfile
    url: str
    operator: str  # the pubkey its NIP-11 document names

    def nip11(self) -> dict:
        contact = f"admin@{self.profile.name}.example"
        return kinds.nip11_document(
            self.profile.name, self.profile.description, self.operator, contact
        )


@dataclass(frozen=True)
class DemoNetwork:
    start: int  # the first second of the first hour
    end: int  # the first second after the last hour
    relays: tuple[DemoRelay, ...]
    events: tuple[Event, ...]  # every event once, sorted by (created_at, id)
    held: Mapping[str, tuple[Event, ...]]  # relay URL -> its events, newest first

    def load_order(self, url: str) -> list[Event]:
        """The relay's events newest first: nostr-relay replaces an older version of a
        replaceable event and deletes a NIP-09 target only when it meets the older one or the
        target after the newer one, so this order keeps every event and lets the warehouse,
        not the relay, decide what is current and what is deleted."""
        return list(self.held[url])


def secret_key(seed: int, role: str, index: int) -> bytes:
    """A fixed secret key per role and index (a sha256 digest is a valid secp256k1 key but
    for odds of about 2^-128)."""
    return hashlib.sha256(f"nostr-analytics demo/{seed}/{role}/{index}".encode()).digest()


@dataclass
class _Author:
    secret: bytes
    pubkey: str
    weight: float  # how active: a few authors post most notes
    japanese: bool
    writer: bool
    write: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)


class _World:
    def __init__(self, seed: int, urls: Sequence[str], end: int, hours: int) -> None:
        if len(urls) != len(RELAY_PROFILES):
            raise ValueError(f"expected {len(RELAY_PROFILES)} relay URLs, got {len(urls)}")
        self.rng = random.Random(seed)
        self.seed, self.end, self.start = seed, end, end - hours * HOUR
        self.hub, self.nihongo, self.index, self.vault = urls
        self.events: list[Event] = []
        self.held: dict[str, list[Event]] = {url: [] for url in urls}
        self.authors = [self._author(i) for i in range(AUTHORS)]
        self.by_pubkey = {a.pubkey: a for a in self.authors}
        self.outside = [
            hashlib.sha256(f"demo outside/{seed}/{i}".encode()).hexdigest() for i in range(600)
        ]

    def _author(self, i: int) -> _Author:
        rng, secret = self.rng, secret_key(self.seed, "author", i)
        author = _Author(
            secret,
            PrivateKey(secret).public_key_xonly.format().hex(),
            weight=1.0 / (i + 1) ** 0.8,
            japanese=rng.random() < 0.25,
            writer=i % 7 == 3,
        )
        chosen = {
            self.hub: rng.random() < 0.55,
            self.nihongo: rng.random() < (0.9 if author.japanese else 0.08),
            self.index: author.writer or rng.random() < 0.15,
            self.vault: i < 6 and rng.random() < 0.8,
        }
        author.write = [url for url, yes in chosen.items() if yes] or [self.hub]
        author.read = list(dict.fromkeys([*author.write, self.hub]))
        return author

    def sign(self, secret: bytes, at: int, kind: int, tags: list[list[str]], content: str) -> Event:
        return sign_event(secret, at, kind, tags, content, _AUX)

    def publish(self, event: Event, relays: Sequence[str], mirror: bool = True) -> Event:
        """Put ``event`` on ``relays``; a client's broadcast copies some of it to the hub."""
        if not self.start <= event.created_at < self.end:
            raise ValueError(f"event at {event.created_at} outside the network's window")
        targets = list(dict.fromkeys(relays))
        if mirror and self.hub not in targets and self.rng.random() < 0.2:
            targets.append(self.hub)
        self.events.append(event)
        for url in targets:
            self.held[url].append(event)
        return event

    def at(self, low: int, high: int) -> int | None:
        """A second in [low, high) within the window, or None when none is left."""
        low, high = max(low, self.start), min(high, self.end)
        return self.rng.randrange(low, high) if low < high else None

    def other(self, not_pubkey: str) -> _Author:
        while True:
            author = self.rng.choice(self.authors)
            if author.pubkey != not_pubkey:
                return author

    def by_weight(self, writers_only: bool = False) -> _Author:
        pool = [a for a in self.authors if a.writer] if writers_only else self.authors
        return self.rng.choices(pool, [a.weight for a in pool])[0]


def _lists(world: _World) -> None:
    """Profiles, contact lists and relay lists: everyone's, some updated later."""
    rng, urls = world.rng, list(world.held)

    def follow() -> str:
        return (
            rng.choice(world.authors).pubkey if rng.random() < 0.35 else rng.choice(world.outside)
        )

    for author in world.authors:
        home = [*author.write, world.index]
        r_tags = [
            ["r", url] if url in author.read else ["r", url, "write"] for url in author.write
        ] + [["r", url, "read"] for url in author.read if url not in author.write]
        first = world.at(world.start, world.start + 12 * HOUR)
        assert first is not None
        world.publish(world.sign(author.secret, first, 10002, r_tags, ""), home, mirror=False)
        for version in range(1 + (rng.random() < 0.2)):
            when = world.at(world.start + version * 24 * HOUR, world.end)
            if when is not None:
                world.publish(world.sign(author.secret, when, 0, [], profile(rng)), home)
        for version in range(1 + (rng.random() < 0.25)):
            when = world.at(world.start + version * 24 * HOUR, world.end)
            if when is not None:
                tags, content = contact_list(rng, follow, urls)
                world.publish(world.sign(author.secret, when, 3, tags, content), home)


def _notes(world: _World) -> list[Event]:
    """Notes and replies, more in the (UTC) evening than at night."""
    rng = world.rng
    notes: list[Event] = []
    for start in range(world.start, world.end, HOUR):
        hour_of_day = start // HOUR % 24
        rate = 14 * (1 + 0.55 * math.cos(2 * math.pi * (hour_of_day - 17) / 24))
        for _ in range(round(rate * rng.uniform(0.7, 1.3))):
            author, tags = world.by_weight(), []
            recent = [n for n in notes[-80:] if n.created_at > start - 6 * HOUR]
            if recent and rng.random() < 0.35:
                parent = rng.choice(recent)
                # The relay hint: where the parent's author writes.
                hint = world.by_pubkey[parent.pubkey].write[0]
                tags += [["e", parent.id, hint, "root"], ["p", parent.pubkey]]
            tags += [["t", rng.choice(("nostr", "bitcoin", "grownostr", "日本"))]] * rng.choice(
                (0, 0, 0, 1)
            )
            content = text(rng, 3, 60 if rng.random() < 0.9 else 300)
            when = world.at(start, start + HOUR)
            assert when is not None
            note = world.sign(author.secret, when, 1, tags, content)
            notes.append(world.publish(note, author.write))
    # By time alone, ties in creation order: ids depend on the relay URLs (hints), and the
    # network's shape must not depend on the ports the relays got.
    notes.sort(key=lambda e: e.created_at)
    return notes


def _engagement(world: _World, notes: list[Event]) -> list[Event]:
    """Reactions, reposts and zaps on the notes; returns the reactions."""
    rng, reactions = world.rng, []
    for note in notes:
        author = world.by_pubkey[note.pubkey]
        # Attention is skewed: popular authors' notes draw most reactions.
        for _ in range(int(rng.lognormvariate(0, 1.1) * (0.4 + 2.5 * author.weight))):
            when = world.at(
                note.created_at + 5, note.created_at + 5 + int(rng.expovariate(1 / 2400)) + 1
            )
            if when is None:
                continue
            reactor = world.other(note.pubkey)
            tags = [["e", note.id], ["p", note.pubkey], ["k", "1"]]
            event = world.sign(reactor.secret, when, 7, tags, rng.choice(REACTIONS))
            reactions.append(world.publish(event, [*reactor.write, author.read[0]]))
        if rng.random() < 0.07:
            when = world.at(note.created_at + 60, note.created_at + 4 * HOUR)
            if when is not None:
                reposter = world.other(note.pubkey)
                tags = [["e", note.id, author.write[0]], ["p", note.pubkey]]
                repost = world.sign(reposter.secret, when, 6, tags, encode_event(note).decode())
                world.publish(repost, reposter.write)
        if rng.random() < 0.09:
            for _ in range(rng.randint(1, 3)):
                _zap(world, author, note.id, note.created_at)
    for _ in range(10):  # zaps to a profile, not to a note
        _zap(world, world.by_weight(), None, world.start)
    return reactions


def _zap(world: _World, recipient: _Author, note_id: str | None, after: int) -> None:
    rng = world.rng
    when = world.at(after + 30, after + 30 + int(rng.expovariate(1 / 3600)) + 1)
    if when is None:
        return
    sender, sats = world.other(recipient.pubkey), rng.choice(kinds.ZAP_SATS)
    relays = recipient.read[:3]
    request = world.sign(
        sender.secret,
        when - rng.randint(1, 20),
        9734,
        kinds.zap_request_tags(relays, sats, recipient.pubkey, note_id),
        rng.choice(("", "", "great post", "⚡", "🤙")),
    )
    # Two LNURL servers publish the receipts, each for the recipients whose wallet it runs.
    server = secret_key(world.seed, "lnurl", world.authors.index(recipient) % 2)
    tags = kinds.zap_receipt_tags(rng, request, sats, recipient.pubkey, note_id)
    world.publish(world.sign(server, when, 9735, tags, ""), relays, mirror=False)


def _articles(world: _World) -> None:
    """Long-form articles by the writers: some edited later, one deleted, one first
    published before the window (its edit is in it)."""
    rng = world.rng
    for number in range(10):
        author = world.by_weight(writers_only=True)
        # Not in the last two hours, so that an edit or a deletion can follow (when the
        # window is that long).
        when = world.at(world.start, max(world.end - 2 * HOUR, world.start + 1))
        assert when is not None
        published_at = world.start - 3 * 24 * HOUR if number == 0 else when
        slug = f"demo-article-{number}"
        tags, content, title = kinds.article(rng, slug, published_at)
        home = [*author.write, world.index]
        world.publish(world.sign(author.secret, when, 30023, tags, content), home)
        if number in (0, 2, 5):
            edited = world.at(when + HOUR, world.end)
            if edited is not None:
                tags, content, _ = kinds.article(rng, slug, published_at, title)
                world.publish(world.sign(author.secret, edited, 30023, tags, content), home)
        if number == 7:
            deleted = world.at(when + 600, world.end)
            if deleted is not None:
                tags = [["a", f"30023:{author.pubkey}:{slug}"], ["k", "30023"]]
                world.publish(world.sign(author.secret, deleted, 5, tags, "retracted"), home)


def _deletions(world: _World, notes: list[Event], reactions: list[Event]) -> None:
    """NIP-09: authors delete a few notes and reactions; two try to delete someone else's."""
    rng = world.rng
    for target in [*rng.sample(notes, len(notes) // 40), *rng.sample(reactions, 4)]:
        author = world.by_pubkey[target.pubkey]
        when = world.at(target.created_at + 60, target.created_at + 2 * HOUR)
        if when is not None:
            tags = [["e", target.id], ["k", str(target.kind)]]
            content = rng.choice(("", "typo", "wrong account"))
            world.publish(world.sign(author.secret, when, 5, tags, content), author.write)
    for target in rng.sample(notes, 2):
        intruder = world.other(target.pubkey)
        when = world.at(target.created_at + 60, world.end)
        if when is not None:
            tags = [["e", target.id], ["k", "1"]]
            world.publish(world.sign(intruder.secret, when, 5, tags, ""), intruder.write)


def _monitors(world: _World, relays: Sequence[DemoRelay]) -> None:
    """NIP-66 reports: one monitor every hour, another every third hour, on every relay that
    was up."""
    rng = world.rng
    base_rtt = {world.hub: 35, world.nihongo: 160, world.index: 80, world.vault: 240}
    for monitor, (every, slower) in enumerate(((1, 1.0), (3, 1.6))):
        secret = secret_key(world.seed, "monitor", monitor)
        for hour in range(0, (world.end - world.start) // HOUR, every):
            vault_up = hour not in VAULT_OUTAGE
            for relay in relays:
                if relay.url == world.vault and not vault_up:
                    continue
                rtt_open = round(base_rtt[relay.url] * slower * rng.lognormvariate(0, 0.25))
                rtt_read = round(rtt_open * rng.uniform(1.1, 1.6))
                tags, content = kinds.monitor_report(relay.url, relay.nip11(), rtt_open, rtt_read)
                start = world.start + hour * HOUR
                when = world.at(start + 60, start + HOUR - 60)
                assert when is not None
                # The hourly monitor writes to the hub and the vault, the other to the vault
                # alone (its reports of the outage hours are lost with it).
                targets = [world.vault] if vault_up else []
                if monitor == 0:
                    targets.append(world.hub)
                if not targets:
                    continue
                world.publish(world.sign(secret, when, 30166, tags, content), targets, mirror=False)


def build_network(
    relay_urls: Sequence[str], end: int, seed: int = 1, hours: int = DEMO_HOURS
) -> DemoNetwork:
    """The demo network of the ``hours`` hours before ``end`` (unix seconds, an hour's
    start), held by relays at ``relay_urls`` (one per ``RELAY_PROFILES`` entry, in order)."""
    world = _World(seed, relay_urls, end, hours)
    relays = tuple(
        DemoRelay(profile, url, world.authors[number].pubkey)
        for number, (profile, url) in enumerate(zip(RELAY_PROFILES, relay_urls, strict=True))
    )
    _lists(world)
    notes = _notes(world)
    reactions = _engagement(world, notes)
    _articles(world)
    _deletions(world, notes, reactions)
    _monitors(world, relays)

    def newest_first(events: list[Event]) -> tuple[Event, ...]:
        unique = {e.id: e for e in events}.values()
        return tuple(sorted(unique, key=lambda e: (-e.created_at, e.id)))

    return DemoNetwork(
        start=world.start,
        end=world.end,
        relays=relays,
        events=tuple(sorted(world.events, key=lambda e: (e.created_at, e.id))),
        held={url: newest_first(events) for url, events in world.held.items()},
    )
