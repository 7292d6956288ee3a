"""A relay farm: thousands of simulated Nostr relays on 127.0.0.1 that behave like the network.

    farm = start_farm(FarmSpec(relays=2500, events=80_000, seed=1), workdir)
    farm.urls          # every relay URL in index order, offline ones included
    farm.manifest      # who holds which event and how each relay behaves (workdir/manifest.json)
    farm.stop()        # the server's counters: events sent, CPU seconds ...

What it models, as shares of all relays (``FarmSpec`` fields, all adjustable): offline 38% (the
port is closed), tarpit 4% (TCP accepted, never a handshake), HTTP 502 on the upgrade 3%, silent
1% (handshake, then nothing), auth-required 3.5% and restricted 3.5% (every REQ answered with
CLOSED); of the relays that serve content, slow 10% (1-3 s round trips) and rate-limited 3%
(CLOSED "rate-limited:" past 5 REQs a minute on one connection), the rest 50-400 ms. Result caps
per REQ: 500 (80%), 1000 (15%), 100 (5%); ``until`` exclusive on 5%; NIP-45 COUNT on 30%.

Who holds what: relays are ranked; the top 3 are fast serving relays and the top 20 all serve.
An event lives on one relay (42%) or on 2+Pareto(1.3) relays, drawn by rank weight: 1/(rank+8)
across the top 100 (90% of the weight), a flat-ish 1/sqrt tail over the rest. That gives about
63% of events on the top 20 and 95% on the top 100, as measured on the network (the manifest's
``summary`` prints what a seed achieved). One dense second of ``dense_events`` kind-7 reactions by
``dense_authors`` authors, all at the same created_at, is held by the top 3 relays only: more
than a page, so a crawler must split it by kind and author. The others post a note elsewhere in
that hour (so a crawler of the hour knows them), but ``dense_fresh_authors`` of them post nothing
else: only a per-author query, from authors seen on a capped page, can find those. A few
events just outside the window (``outside_events``) must never be landed.

Events are valid signed events (NIP-01 ids, BIP-340 signatures through the package's
``sign_event``, fixed auxiliary randomness), in the mix of the network: kind 1 (42%, mostly
short), 7 (28%), 9735 zap receipts with bolt11 and a signed zap request (7%), 1059 gift wraps
under one-time keys (6%), 6 reposts holding the reposted event (5%), 0 metadata (4%), 3 contact
lists of hundreds of ``p`` tags (3%), 10002 relay lists (3%), 30023 long-form of several kB
(2%). One author never has two versions of a replaceable kind. A seed fixes everything: keys,
content, signatures, relay behaviours and holdings. Building 80,000 events takes about 10 s
(two processes sign them), so the set is cached under ``benchmarks/.cache/relay_farm/`` by the
parameters that shape it (not the relay count): a rerun only reads it back.

The relays are served by ``relay_farm_server.py`` in ``processes`` child processes (one is
plenty: about 1% of a core during a crawl of the full farm), see its docstring for the protocol.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import itertools
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nostr_assets.lib.protocol.event import Event, encode_event, sign_event  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import REACTIONS, RELAYS, contact_list, profile, text  # noqa: E402

SERVER = Path(__file__).resolve().parent / "relay_farm_server.py"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "relay_farm"
# Bump when the generator changes, so stale cached event sets are not reused.
GENERATOR_VERSION = 3
HOST = "127.0.0.1"
# 2026-11-20 13:00 UTC: a past hour, after the default first partition.
DEFAULT_HOUR_START = 1_795_179_600
AUX_RAND = bytes(32)  # BIP-340 auxiliary randomness, fixed: signatures are reproducible
KIND_MIX = {1: 0.42, 7: 0.28, 9735: 0.07, 1059: 0.06, 6: 0.05, 0: 0.04, 3: 0.03, 10002: 0.03}
KIND_MIX[30023] = 0.02
REPLACEABLE = {0, 3, 10002}
# Behaviours, and which of them answer REQs with events.
NOT_SERVING = ("offline", "tarpit", "http502", "silent", "auth", "restricted")
SERVING = ("normal", "slow", "rate_limited")
TOP_NORMAL, TOP_SERVING, HEAD = 3, 20, 100
# The ephemeral range (/proc/sys/net/ipv4/ip_local_port_range) is avoided: an outgoing
# connection could otherwise sit on an "offline" relay's port.
PORT_FLOOR, PORT_CEILING = 10_000, 32_768


@dataclass(frozen=True)
class FarmSpec:
    relays: int = 2500
    events: int = 80_000  # unique events inside the window, dense second included
    hour_start: int = DEFAULT_HOUR_START
    hours: int = 1
    seed: int = 1
    rtt_scale: float = 1.0  # every round trip is multiplied by this (0.05 for tests)
    # Shares of all relays.
    offline: float = 0.38
    tarpit: float = 0.04
    http502: float = 0.03
    silent: float = 0.01
    auth: float = 0.035
    restricted: float = 0.035
    # Shares of the relays that serve content.
    slow: float = 0.10
    rate_limited: float = 0.03
    rate_limit: int = 5  # REQs per connection per rate_window before CLOSED rate-limited
    rate_window: float = 60.0
    caps: tuple[tuple[int, float], ...] = ((500, 0.80), (1000, 0.15), (100, 0.05))
    until_exclusive: float = 0.05
    count_supported: float = 0.30
    normal_rtt_ms: tuple[float, float] = (50.0, 400.0)
    slow_rtt_ms: tuple[float, float] = (1000.0, 3000.0)
    # Replication: single-relay share, Pareto tail of extra copies.
    single_relay_share: float = 0.42
    dense_events: int = 600
    dense_authors: int = 200
    dense_fresh_authors: int = 50
    outside_events: int | None = None  # default: max(4, events // 1000)
    authors: int | None = None  # default: max(100, events // 4)
    processes: int = 1
    base_port: int | None = None  # default: the first free run of ports from 20000

    @property
    def since(self) -> int:
        return self.hour_start

    @property
    def until(self) -> int:  # inclusive: the window's last second
        return self.hour_start + self.hours * 3600 - 1

    def event_set_key(self) -> dict[str, Any]:
        """The parameters that shape the event set (and so name its cache file)."""
        return {
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "events": self.events,
            "hour_start": self.hour_start,
            "hours": self.hours,
            "dense_events": self.dense_events,
            "dense_authors": self.dense_authors,
            "dense_fresh_authors": self.dense_fresh_authors,
            "outside_events": self.n_outside,
            "authors": self.n_authors,
        }

    @property
    def n_outside(self) -> int:
        return (
            self.outside_events if self.outside_events is not None else max(4, self.events // 1000)
        )

    @property
    def n_authors(self) -> int:
        return self.authors if self.authors is not None else max(100, self.events // 4)


# ---------------------------------------------------------------------------------------------
# The event set
# ---------------------------------------------------------------------------------------------


def secret_key(seed: int, label: str, index: int) -> bytes:
    return hashlib.sha256(f"relay-farm:{seed}:{label}:{index}".encode()).digest()


def _pubkey(secret: bytes) -> str:
    from coincurve import PrivateKey

    return PrivateKey(secret).public_key_xonly.format().hex()


@dataclass
class _Planned:
    kind: int
    author: tuple[str, int]  # ("author", i) pool, ("dense", j), ("wrap", i), ("zapper", j)
    created_at: int
    role: str  # regular, edge, dense, dense_note, outside


def _plan_events(spec: FarmSpec) -> tuple[list[_Planned], int | None]:
    """Kinds, authors, times and roles of every event: cheap and sequential, so chunks of the
    expensive part (content and signatures) can be built in any order or process."""
    rng = random.Random(f"relay-farm-plan:{spec.seed}")
    since, until = spec.since, spec.until
    n_authors = spec.n_authors
    dense = spec.dense_events if spec.dense_authors > 0 else 0
    known = max(0, spec.dense_authors - spec.dense_fresh_authors) if dense else 0
    regular = spec.events - dense - known
    if regular < 0:
        raise ValueError("events must exceed dense_events plus the known dense authors")
    # In the middle hour of the window, away from its edges.
    dense_second = since + (spec.hours // 2) * 3600 + 1234 if dense else None
    kinds, weights = list(KIND_MIX), list(KIND_MIX.values())
    author_cum = list(itertools.accumulate(1.0 / (r + 1) ** 0.8 for r in range(n_authors)))
    used: set[tuple[int, int]] = set()
    planned: list[_Planned] = []
    wraps = itertools.count()

    def author_for(kind: int) -> tuple[str, int]:
        if kind == 1059:
            return ("wrap", next(wraps))
        if kind == 9735:
            return ("zapper", rng.randrange(5))
        for attempt in range(50):
            if attempt < 20:
                index = bisect.bisect(author_cum, rng.random() * author_cum[-1])
            else:
                index = rng.randrange(n_authors)
            index = min(index, n_authors - 1)
            if kind not in REPLACEABLE or (index, kind) not in used:
                used.add((index, kind))
                return ("author", index)
        raise ValueError("too few authors for the replaceable events; raise FarmSpec.authors")

    def regular_time() -> int:
        t = rng.randint(since, until)
        return t + 1 if t == dense_second else t

    edges = [h * 3600 + since + off for h in range(spec.hours) for off in (0, 3599)]
    for i in range(regular):
        kind = rng.choices(kinds, weights)[0]
        role, created_at = ("edge", edges[i]) if i < len(edges) else ("regular", regular_time())
        planned.append(_Planned(kind, author_for(kind), created_at, role))
    # The dense authors that also post elsewhere in the dense second's hour: a crawler fetches
    # one hour at a time, so only a note in that hour makes the author known to it.
    for j in range(known):
        assert dense_second is not None
        hour = dense_second - (dense_second - since) % 3600
        created_at = rng.randint(hour, hour + 3598)
        created_at += created_at >= dense_second
        planned.append(_Planned(1, ("dense", j), created_at, "dense_note"))
    for k in range(dense):
        planned.append(_Planned(7, ("dense", k % spec.dense_authors), dense_second, "dense"))
    for k in range(spec.n_outside):
        before = k % 2 == 0
        offset = 1 if k < 2 else rng.randint(1, 300)
        created_at = since - offset if before else until + offset
        kind = rng.choices(kinds, weights)[0]
        planned.append(_Planned(kind, author_for(kind), created_at, "outside"))
    return planned, dense_second


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

# Set in each generating process (initializer or directly): the pool's public keys.
_POOL_PUBKEYS: list[str] = []


def _init_pool(pubkeys: list[str]) -> None:
    global _POOL_PUBKEYS
    _POOL_PUBKEYS = pubkeys


class _Content:
    """Tags and content of each kind, from one chunk's random generator."""

    def __init__(self, seed: int, chunk: int) -> None:
        self.seed = seed
        self.rng = random.Random(f"relay-farm-content:{seed}:{chunk}")
        self.recent_ids: list[str] = []
        self.last_note: Event | None = None

    def other(self) -> str:
        return self.rng.choice(_POOL_PUBKEYS)

    def ref(self) -> str:
        if self.recent_ids and self.rng.random() < 0.8:
            return self.rng.choice(self.recent_ids[-2000:])
        return f"{self.rng.getrandbits(256):064x}"

    def build(self, kind: int, created_at: int, index: int) -> tuple[list[list[str]], str]:
        return getattr(self, f"kind_{kind}")(created_at, index)

    def kind_1(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        rng, tags = self.rng, []
        if rng.random() < 0.35:  # a reply: root (and reply) markers, the author replied to
            tags.append(["e", self.ref(), rng.choice(RELAYS), "root"])
            if rng.random() < 0.5:
                tags.append(["e", self.ref(), "", "reply"])
            tags.append(["p", self.other()])
        tags.extend(
            ["t", rng.choice(("nostr", "bitcoin", "grownostr", "日本"))]
            for _ in range(rng.choice((0, 0, 0, 1, 2)))
        )
        if rng.random() < 0.2:
            tags.append(["client", rng.choice(("Damus", "Amethyst", "Primal", "noStrudel"))])
        roll = rng.random()
        if roll < 0.85:
            return tags, text(self.rng, 2, 40)
        if roll < 0.95:
            return tags, text(self.rng, 40, 150)
        return tags, "\n\n".join(text(self.rng, 60, 120) for _ in range(rng.randint(3, 8)))

    def kind_7(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        tags = [["e", self.ref()], ["p", self.other()]]
        if self.rng.random() < 0.6:
            tags.append(["k", "1"])
        return tags, self.rng.choice(REACTIONS)

    def kind_6(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        note = self.last_note
        if note is None:  # an older note of the pool, signed for the repost
            author = self.rng.randrange(len(_POOL_PUBKEYS))
            tags, text = self.kind_1(created_at, index)
            note = sign_event(
                secret_key(self.seed, "author", author),
                created_at - self.rng.randint(3600, 30 * 86400),
                1,
                tags,
                text,
                aux_rand=AUX_RAND,
            )
        tags = [["e", note.id, self.rng.choice(RELAYS)], ["p", note.pubkey]]
        return tags, encode_event(note).decode()

    def kind_3(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        return contact_list(self.rng, self.other)

    def kind_0(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        return [], profile(self.rng)

    def kind_10002(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        rng = self.rng
        tags = []
        for url in rng.sample(RELAYS, rng.randint(2, len(RELAYS))):
            tags.append(["r", url, *rng.choice(([], [], ["read"], ["write"]))])
        return tags, ""

    def kind_30023(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        rng = self.rng
        title = text(self.rng, 3, 8).replace("\n", " ")
        body = "\n\n".join(
            f"## {text(self.rng, 2, 5)}\n\n{text(self.rng, 80, 200)}"
            for _ in range(rng.randint(2, 6))
        )
        tags = [
            ["d", f"article-{self.seed}-{index}"],
            ["title", title],
            ["summary", text(self.rng, 10, 30)],
            ["published_at", str(created_at - rng.randint(0, 86400))],
            *(["t", rng.choice(("bitcoin", "nostr", "essay", "tech"))] for _ in range(2)),
        ]
        return tags, f"# {title}\n\n{body}"

    def kind_9735(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        rng = self.rng
        sats = rng.choice((21, 21, 100, 500, 1000, 2100, 5000, 21000))
        recipient, note = self.other(), self.ref()
        sender = rng.randrange(len(_POOL_PUBKEYS))
        request = sign_event(
            secret_key(self.seed, "author", sender),
            created_at - rng.randint(1, 20),
            9734,
            [
                ["relays", *rng.sample(RELAYS, 2)],
                ["amount", str(sats * 1000)],
                ["p", recipient],
                ["e", note],
            ],
            rng.choice(("", "", "great post", "⚡")),
            aux_rand=AUX_RAND,
        )
        invoice = f"lnbc{sats * 10}n1p" + "".join(rng.choices(_BECH32, k=rng.randint(180, 260)))
        tags = [
            ["p", recipient],
            ["e", note],
            ["P", request.pubkey],
            ["bolt11", invoice],
            ["description", encode_event(request).decode()],
        ]
        if rng.random() < 0.5:
            tags.append(["preimage", f"{rng.getrandbits(256):064x}"])
        return tags, ""

    def kind_1059(self, created_at: int, index: int) -> tuple[list[list[str]], str]:
        payload = self.rng.randbytes(self.rng.randint(600, 2500))
        return [["p", self.other()]], base64.b64encode(payload).decode()


def _secret_for(seed: int, author: tuple[str, int]) -> bytes:
    label, index = author
    return secret_key(seed, label, index)


def _build_chunk(args: tuple[int, int, list[_Planned], int]) -> bytes:
    seed, chunk, rows, first = args
    content = _Content(seed, chunk)
    lines = []
    for offset, row in enumerate(rows):
        tags, text = content.build(row.kind, row.created_at, first + offset)
        event = sign_event(
            _secret_for(seed, row.author), row.created_at, row.kind, tags, text, aux_rand=AUX_RAND
        )
        content.recent_ids.append(event.id)
        if row.kind == 1:
            content.last_note = event
        lines.append(encode_event(event))
    return b"\n".join(lines) + b"\n"


CHUNK = 2000


def load_or_build_events(spec: FarmSpec, cache_dir: Path | None = None) -> tuple[Path, dict]:
    """The event set's JSONL file (one event per line, in plan order) and its roles."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    key = spec.event_set_key()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"events-v{GENERATOR_VERSION}-{spec.events}-s{spec.seed}-{digest}.jsonl"
    roles_path = path.with_suffix(".roles.json")
    if path.exists() and roles_path.exists():
        return path, json.loads(roles_path.read_text())
    planned, dense_second = _plan_events(spec)
    pubkeys = [_pubkey(secret_key(spec.seed, "author", i)) for i in range(spec.n_authors)]
    _init_pool(pubkeys)
    jobs = [
        (spec.seed, c, planned[start : start + CHUNK], start)
        for c, start in enumerate(range(0, len(planned), CHUNK))
    ]
    workers = min(len(jobs), os.cpu_count() or 1)
    if len(planned) > 20_000 and workers > 1:
        with ProcessPoolExecutor(workers, initializer=_init_pool, initargs=(pubkeys,)) as pool:
            parts = list(pool.map(_build_chunk, jobs))
    else:
        parts = [_build_chunk(job) for job in jobs]
    roles: dict[str, list[int]] = {}
    for i, row in enumerate(planned):
        if row.role != "regular":
            roles.setdefault(row.role, []).append(i)
    dense_authors = {row.author[1] for row in planned if row.role == "dense"}
    known = {row.author[1] for row in planned if row.role == "dense_note"}
    fresh = sorted(dense_authors - known)
    meta = {
        "key": key,
        "dense_second": dense_second,
        "roles": roles,
        "fresh_authors": [_pubkey(secret_key(spec.seed, "dense", j)) for j in fresh],
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)
    roles_path.write_text(json.dumps(meta))
    return path, meta


class _Head(msgspec.Struct):
    id: str
    pubkey: str
    created_at: int
    kind: int


def read_heads(events_file: Path) -> list[_Head]:
    return msgspec.json.Decoder(_Head).decode_lines(events_file.read_bytes())


def read_events(events_file: Path) -> list[Event]:
    """Every event of the set, parsed (for tests; a benchmark needs only the heads)."""
    return msgspec.json.Decoder(Event).decode_lines(events_file.read_bytes())


# ---------------------------------------------------------------------------------------------
# The relays: behaviours and holdings
# ---------------------------------------------------------------------------------------------


def _exact_counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Counts summing to ``total`` in these shares (largest remainders)."""
    raw = {name: total * share for name, share in shares.items()}
    counts = {name: int(value) for name, value in raw.items()}
    rest = total - sum(counts.values())
    for name in sorted(raw, key=lambda n: raw[n] - counts[n], reverse=True)[:rest]:
        counts[name] += 1
    return counts


def _behaviour_shares(spec: FarmSpec) -> dict[str, float]:
    shares = {name: getattr(spec, name) for name in NOT_SERVING}
    serving = 1.0 - sum(shares.values())
    if serving < 0:
        raise ValueError("the non-serving shares add up to more than 1")
    shares["slow"] = serving * spec.slow
    shares["rate_limited"] = serving * spec.rate_limited
    shares["normal"] = serving - shares["slow"] - shares["rate_limited"]
    return shares


def _pool(rng: random.Random, counts: dict[Any, int]) -> list[Any]:
    values = [value for value, n in counts.items() for _ in range(n)]
    rng.shuffle(values)
    return values


def _yes_no(share: float) -> dict[bool, float]:
    return {True: share, False: 1.0 - share}


def _rank_weights(n: int) -> list[float]:
    """90% of the weight over the top 100 ranks as 1/(rank+8), the rest as 1/sqrt over the tail
    (calibrated: top 20 hold about 63% of events, top 100 about 95%, with 42% single copies)."""
    head = [1.0 / (r + 8) for r in range(min(HEAD, n))]
    tail = [1.0 / (r - HEAD + 1) ** 0.5 for r in range(HEAD, n)]
    head_mass = 0.9 if tail else 1.0
    hs, ts = sum(head), sum(tail) or 1.0
    return [w * head_mass / hs for w in head] + [w * (1 - head_mass) / ts for w in tail]


def plan_relays(spec: FarmSpec, heads: list[_Head], meta: dict, base_port: int) -> list[dict]:
    """Every relay's behaviour, round trip, cap, semantics and held events (indices)."""
    rng = random.Random(f"relay-farm-relays:{spec.seed}:{spec.relays}")
    n = spec.relays
    labels = _pool(rng, _exact_counts(n, _behaviour_shares(spec)))  # by rank
    # The biggest relays serve (as on the network): the top 3 fast and unlimited, the top 20
    # serving; swapped with ranks further down, so the shares stay exact.
    for rank in range(min(TOP_SERVING, n)):
        wanted = ("normal",) if rank < TOP_NORMAL else SERVING
        if labels[rank] in wanted:
            continue
        donors = [r for r in range(TOP_SERVING, n) if labels[r] in wanted]
        if donors:
            donor = rng.choice(donors)
            labels[rank], labels[donor] = labels[donor], labels[rank]
    caps = _pool(rng, _exact_counts(n, {cap: share for cap, share in spec.caps}))
    exclusive = _pool(rng, _exact_counts(n, _yes_no(spec.until_exclusive)))
    counting = _pool(rng, _exact_counts(n, _yes_no(spec.count_supported)))
    index_of_rank = list(range(n))
    rng.shuffle(index_of_rank)
    relays: list[dict] = [{} for _ in range(n)]
    for rank, index in enumerate(index_of_rank):
        behaviour = labels[rank]
        low, high = spec.slow_rtt_ms if behaviour == "slow" else spec.normal_rtt_ms
        relays[index] = {
            "index": index,
            "url": f"ws://{HOST}:{base_port + index}",
            "port": base_port + index,
            "rank": rank,
            "behaviour": behaviour,
            "serves": behaviour in SERVING,
            "rtt_ms": None if behaviour in ("offline", "tarpit") else round(rng.uniform(low, high)),
            "cap": caps[index],
            "until_exclusive": exclusive[index],
            "count": counting[index],
            "rate_limit": spec.rate_limit,
            "rate_window": spec.rate_window,
            "events": [],
        }
    # Holdings: the dense second and its authors' other notes on the top 3, the rest by weight.
    cum = list(itertools.accumulate(_rank_weights(n)))
    top = index_of_rank[: min(TOP_NORMAL, n)]
    pinned = set(meta["roles"].get("dense", [])) | set(meta["roles"].get("dense_note", []))
    hold_rng = random.Random(f"relay-farm-holdings:{spec.seed}:{n}")
    kmax = min(40, n)
    for event in range(len(heads)):
        if event in pinned:
            holders = top
        else:
            k = 1
            if hold_rng.random() >= spec.single_relay_share:
                k = min(kmax, 1 + int(hold_rng.paretovariate(1.3)))
            chosen: set[int] = set()
            while len(chosen) < k:
                chosen.add(min(n - 1, bisect.bisect(cum, hold_rng.random() * cum[-1])))
            holders = [index_of_rank[rank] for rank in sorted(chosen)]
        for index in holders:
            relays[index]["events"].append(event)
    return relays


# ---------------------------------------------------------------------------------------------
# The manifest: the truth a crawl is checked against
# ---------------------------------------------------------------------------------------------


class Manifest:
    """Which relay holds which event, and how each relay behaves (``manifest.json``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.relays: list[dict[str, Any]] = data["relays"]
        self.urls: list[str] = [r["url"] for r in self.relays]
        self.since: int = data["since"]
        self.until: int = data["until"]
        self.dense_second: int | None = data["dense_second"]
        events = data["events"]
        self.ids: list[str] = events["id"]
        self.created_at: list[int] = events["created_at"]
        self.kinds: list[int] = events["kind"]
        self.pubkeys: list[str] = events["pubkey"]
        self.roles: dict[str, list[int]] = data["roles"]
        self.fresh_authors: set[str] = set(data["fresh_authors"])
        self.by_url = {r["url"]: r for r in self.relays}

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls(msgspec.json.decode(path.read_bytes()))

    def in_window(self, event: int) -> bool:
        return self.since <= self.created_at[event] <= self.until

    def window_events(self) -> set[str]:
        return {eid for i, eid in enumerate(self.ids) if self.in_window(i)}

    def holders(self) -> dict[str, list[str]]:
        """Event id -> URLs of the relays holding it (every behaviour, window or not)."""
        held: dict[str, list[str]] = {}
        for relay in self.relays:
            for event in relay["events"]:
                held.setdefault(self.ids[event], []).append(relay["url"])
        return held

    def sightings(self, serving_only: bool = True) -> set[tuple[str, str]]:
        """(event id, relay URL) for the window's events, on serving relays only by default."""
        return {
            (self.ids[event], relay["url"])
            for relay in self.relays
            if relay["serves"] or not serving_only
            for event in relay["events"]
            if self.in_window(event)
        }

    def expected_ids(self) -> set[str]:
        """The window's events that at least one serving relay holds: what a crawl must land."""
        return {event_id for event_id, _ in self.sightings()}

    def fresh_dense(self, event: int) -> bool:
        """A dense-second event whose author posts nothing else: findable only per author."""
        return self.created_at[event] == self.dense_second and self.pubkeys[event] in (
            self.fresh_authors
        )

    def fresh_dense_ids(self) -> set[str]:
        return {self.ids[i] for i in self.roles.get("dense", []) if self.fresh_dense(i)}


def explain_misses(
    manifest: Manifest, landed: set[str], outcome: Callable[[str, int], str | None]
) -> dict[str, Any]:
    """Compare landed event ids with the manifest and say why each expected event is missing.

    ``outcome(relay_url, created_at)`` says how the crawl of that relay's window holding that
    second ended: None (cleanly), "truncated" (flagged possibly_truncated) or its error class.
    Events only non-serving relays hold are not expected, and are counted apart.
    """
    window = manifest.window_events()
    serving_holders: dict[str, list[str]] = {}
    for event_id, url in manifest.sightings():
        serving_holders.setdefault(event_id, []).append(url)
    created_at = dict(zip(manifest.ids, manifest.created_at, strict=True))
    fresh = manifest.fresh_dense_ids()
    reasons: Counter[str] = Counter()
    for event_id in set(serving_holders) - landed:
        ends = [outcome(url, created_at[event_id]) for url in serving_holders[event_id]]
        if None in ends:
            reasons["a holder was crawled cleanly, yet the event is missing"] += 1
        elif event_id in fresh and all(end == "truncated" for end in ends):
            reasons["dense second, author seen nowhere else (holders flagged truncated)"] += 1
        elif "truncated" in ends:
            reasons["a holder flagged possibly_truncated"] += 1
        else:
            reasons["every holder failed: " + ", ".join(sorted(set(map(str, ends))))] += 1
    return {
        "window_events": len(window),
        "expected": len(serving_holders),
        "landed_expected": len(landed & set(serving_holders)),
        "missed": sum(reasons.values()),
        "missed_by_reason": dict(reasons.most_common()),
        "only_on_non_serving_relays": len(window - set(serving_holders)),
        # Either of these is a bug: in the crawler (outside the window) or in the farm.
        "landed_outside_window_or_unknown": len(landed - window),
        "landed_though_no_serving_relay_holds_it": len((landed & window) - set(serving_holders)),
    }


def _summary(spec: FarmSpec, relays: list[dict], heads: list[_Head], events_file: Path) -> dict:
    window = {i for i, h in enumerate(heads) if spec.since <= h.created_at <= spec.until}
    copies: Counter[int] = Counter()
    best_rank: dict[int, int] = {}
    for relay in relays:
        for event in relay["events"]:
            if event in window:
                copies[event] += 1
                best_rank[event] = min(best_rank.get(event, relay["rank"]), relay["rank"])
    serving = [r for r in relays if r["serves"]]
    reachable = {e for r in serving for e in r["events"] if e in window}
    top = sorted(relays, key=lambda r: r["rank"])[:3]
    return {
        "window_events": len(window),
        "outside_events": len(heads) - len(window),
        "event_set_bytes": events_file.stat().st_size,
        "single_relay_share": round(sum(1 for c in copies.values() if c == 1) / len(window), 3),
        "mean_copies": round(sum(copies.values()) / len(window), 2),
        "top20_share": round(sum(1 for r in best_rank.values() if r < 20) / len(window), 3),
        "top100_share": round(sum(1 for r in best_rank.values() if r < 100) / len(window), 3),
        "served_copies": sum(1 for r in serving for e in r["events"] if e in window),
        "reachable_events": len(reachable),
        "unreachable_events": len(window) - len(reachable),
        "top3_events": [len(r["events"]) for r in top],
        "behaviours": dict(Counter(r["behaviour"] for r in relays)),
    }


# ---------------------------------------------------------------------------------------------
# Starting and stopping
# ---------------------------------------------------------------------------------------------


def _ports_free(base: int, n: int) -> bool:
    sockets = []
    try:
        for port in range(base, base + n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def _base_ports(spec: FarmSpec) -> list[int]:
    if spec.base_port is not None:
        return [spec.base_port]
    step = spec.relays + 100
    above = range(20_000, PORT_CEILING - spec.relays, step)
    below = range(PORT_FLOOR, 20_000 - spec.relays, step)
    return [*above, *below]


@dataclass
class Farm:
    manifest: Manifest
    workdir: Path
    relays_file: Path
    manifest_path: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    stats: dict[str, int] | None = None

    @property
    def urls(self) -> list[str]:
        return self.manifest.urls

    def events(self) -> list[Event]:
        return read_events(Path(self.manifest.data["events_file"]))

    def stop(self) -> dict[str, int]:
        """Stop the servers; their counters summed (events_sent, serve_cpu_ms ...)."""
        if self.stats is not None:
            return self.stats
        total: Counter[str] = Counter()
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            for line in (out or b"").decode().splitlines():
                if line.startswith("STATS "):
                    for name, value in json.loads(line[6:]).items():
                        if name == "max_rss_kb":
                            total[name] = max(total[name], value)
                        elif name != "pid":
                            total[name] += value
        self.stats = dict(total)
        return self.stats

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _launch(manifest_path: Path, workers: int, workdir: Path, timeout: float) -> list:
    procs = []
    for worker in range(workers):
        log = (workdir / f"farm-server-{worker}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, str(SERVER), "--manifest", str(manifest_path)),
                    *("--worker", str(worker), "--workers", str(workers)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
            )
        )
        log.close()
    deadline = time.monotonic() + timeout
    for worker, proc in enumerate(procs):
        while True:
            remaining = deadline - time.monotonic()
            ready = remaining > 0 and select.select([proc.stdout], [], [], remaining)[0]
            line = proc.stdout.readline() if ready else b""  # type: ignore[union-attr]
            if line.startswith(b"READY"):
                break
            if not line:  # the server ended, or the time is up
                for other in procs:
                    other.kill()
                    other.wait()
                log_text = (workdir / f"farm-server-{worker}.log").read_text(errors="replace")
                raise RuntimeError(f"relay farm server {worker} did not start: {log_text[-2000:]}")
    return procs


def start_farm(spec: FarmSpec, workdir: Path, *, cache_dir: Path | None = None) -> Farm:
    """Build (or load) the event set, plan the relays, write the manifest and relays file into
    ``workdir``, and start the servers; returns once every relay listens."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    events_file, meta = load_or_build_events(spec, cache_dir)
    heads = read_heads(events_file)
    last_error: Exception | None = None
    for base in _base_ports(spec):
        if not _ports_free(base, spec.relays):
            continue
        relays = plan_relays(spec, heads, meta, base)
        data = {
            "version": GENERATOR_VERSION,
            "spec": {f.name: getattr(spec, f.name) for f in fields(spec)},
            "host": HOST,
            "base_port": base,
            "since": spec.since,
            "until": spec.until,
            "dense_second": meta["dense_second"],
            "events_file": str(events_file),
            "events": {
                "id": [h.id for h in heads],
                "created_at": [h.created_at for h in heads],
                "kind": [h.kind for h in heads],
                "pubkey": [h.pubkey for h in heads],
            },
            "roles": meta["roles"],
            "fresh_authors": meta["fresh_authors"],
            "summary": _summary(spec, relays, heads, events_file),
            "relays": relays,
        }
        manifest_path = workdir / "manifest.json"
        manifest_path.write_bytes(msgspec.json.encode(data))
        relays_file = workdir / "relays.txt"
        relays_file.write_text("".join(r["url"] + "\n" for r in relays))
        try:
            procs = _launch(manifest_path, max(1, spec.processes), workdir, timeout=300)
        except RuntimeError as error:
            if "BIND_FAILED" not in str(error):
                raise
            last_error = error  # another program took a port meanwhile: next run of ports
            continue
        return Farm(Manifest(data), workdir, relays_file, manifest_path, procs)
    raise RuntimeError(f"no free run of {spec.relays} ports on {HOST}: {last_error}")
