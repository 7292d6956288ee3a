"""Realistic signed Nostr events, built deterministically for benchmarks.

The mix follows what relays serve today: kind 1 notes (60 %), kind 7 reactions (30 %), kind 3
contact lists (5 %, hundreds of ``p`` tags each, so most of the bytes) and kind 0 profiles (5 %,
JSON metadata as content). Text mixes scripts, emoji and characters that JSON must escape, so
parsing and canonical serialization meet what they meet on the wire.

Everything derives from a seed: the same arguments always give byte-identical events, secret
keys included (``secret_key``). Signing is the slow part (about 20 µs per event with a reused
keypair, three times that through ``PrivateKey.sign_schnorr``, which rebuilds the keypair and
verifies its own output), so ``load_or_build`` keeps the generated set as JSON lines under
``benchmarks/.cache/`` and later runs only decode it.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import msgspec

# The vocabulary and the text builders live in the package, where the offline demo
# (nostr_assets/demo/) writes its events with them; the relay farm imports them from here.
from nostr_assets.demo.content import (
    NAMES,
    ODD,
    REACTIONS,
    RELAYS,
    WORDS,
    contact_list,
    profile,
    text,
)
from nostr_assets.lib.protocol.event import Event, canonical_serialization, encode_event

__all__ = [
    "NAMES",
    "ODD",
    "REACTIONS",
    "RELAYS",
    "WORDS",
    "build_events",
    "contact_list",
    "load_or_build",
    "profile",
    "secret_key",
    "text",
]

# Bump when the generator changes, so stale cache files are not reused.
GENERATOR_VERSION = 1
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache"
KIND_SHARES = {1: 0.60, 7: 0.30, 3: 0.05, 0: 0.05}
BASE_TIME = 1_700_000_000


def secret_key(seed: int, index: int) -> bytes:
    """The fixed 32-byte secret key of author ``index`` (valid for every index in practice)."""
    return hashlib.sha256(b"nostr-analytics-bench:%d:%d" % (seed, index)).digest()


class _Signer:
    """One author's keypair, built once: libsecp256k1 through coincurve's own bindings.

    ``PrivateKey.sign_schnorr`` rebuilds the keypair and re-verifies each signature, which
    triples the cost; the fallback keeps it for coincurve versions without these internals.
    """

    def __init__(self, secret: bytes) -> None:
        from coincurve import PrivateKey

        self._private = PrivateKey(secret)
        self.pubkey = self._private.public_key_xonly.format().hex()
        try:
            from coincurve._libsecp256k1 import ffi, lib
            from coincurve.context import GLOBAL_CONTEXT
        except ImportError:  # pragma: no cover - depends on coincurve's layout
            self._lib = None
            return
        self._lib, self._ffi, self._ctx = lib, ffi, GLOBAL_CONTEXT.ctx
        self._keypair = ffi.new("secp256k1_keypair *")
        if not lib.secp256k1_keypair_create(self._ctx, self._keypair, secret):
            raise ValueError("invalid secret key")
        self._sig = ffi.new("unsigned char[64]")

    def sign(self, digest: bytes) -> str:
        # No auxiliary randomness: BIP-340 signing is then deterministic, so reruns match.
        if self._lib is None:  # pragma: no cover
            return self._private.sign_schnorr(digest, None).hex()
        ok = self._lib.secp256k1_schnorrsig_sign32(
            self._ctx, self._sig, digest, self._keypair, self._ffi.NULL
        )
        if not ok:
            raise ValueError("signing failed")
        return bytes(self._ffi.buffer(self._sig, 64)).hex()


class _Generator:
    def __init__(self, seed: int, authors: int, start: int = 0, step: float | None = None) -> None:
        self.rng = random.Random(seed)
        # With a step, event i falls in [start + i*step, start + (i+1)*step): a fixed span.
        self.start, self.step = start, step
        self.signers = [_Signer(secret_key(seed, i)) for i in range(authors)]
        # Activity is skewed: a few authors post most notes (weights ~ 1 / rank^0.8).
        self.weights = [1.0 / (rank + 1) ** 0.8 for rank in range(authors)]
        self.recent_ids: list[str] = []

    def _author(self) -> _Signer:
        return self.rng.choices(self.signers, self.weights)[0]

    def _other_pubkey(self) -> str:
        return self.rng.choice(self.signers).pubkey

    def _referenced_id(self) -> str:
        if self.recent_ids:
            return self.rng.choice(self.recent_ids[-5000:])
        return f"{self.rng.getrandbits(256):064x}"

    def _note(self) -> tuple[list[list[str]], str]:
        rng, tags = self.rng, []
        if rng.random() < 0.4:  # a reply: root/reply markers and the author replied to
            tags.append(["e", self._referenced_id(), rng.choice(RELAYS), "root"])
            tags.append(["p", self._other_pubkey()])
        tags.extend(
            ["t", rng.choice(("nostr", "bitcoin", "grownostr", "日本"))]
            for _ in range(rng.choice((0, 0, 0, 1, 2)))
        )
        return tags, text(rng, 3, 60 if rng.random() < 0.9 else 300)

    def _reaction(self) -> tuple[list[list[str]], str]:
        tags = [["e", self._referenced_id()], ["p", self._other_pubkey()]]
        if self.rng.random() < 0.5:
            tags.append(["k", "1"])
        return tags, self.rng.choice(REACTIONS)

    def _contacts(self) -> tuple[list[list[str]], str]:
        return contact_list(self.rng, self._other_pubkey)

    def _profile(self) -> tuple[list[list[str]], str]:
        return [], profile(self.rng)

    def event(self, index: int, kind: int) -> Event:
        tags, content = {1: self._note, 7: self._reaction, 3: self._contacts, 0: self._profile}[
            kind
        ]()
        signer = self._author()
        if self.step is None:
            created_at = BASE_TIME + index * 2 + self.rng.randrange(60)
        else:
            created_at = self.start + int(index * self.step)
        unsigned = Event("", signer.pubkey, created_at, kind, tags, content, "")
        digest = hashlib.sha256(canonical_serialization(unsigned)).digest()
        event_id = digest.hex()
        self.recent_ids.append(event_id)
        return Event(event_id, signer.pubkey, created_at, kind, tags, content, signer.sign(digest))


def build_events(
    n: int, *, seed: int = 1, authors: int = 3000, start: int = 0, span: int | None = None
) -> list[Event]:
    """``n`` signed events with the ``KIND_SHARES`` mix; identical for identical arguments.

    With ``span``, created_at spreads evenly over ``[start, start + span)`` seconds.
    """
    generator = _Generator(seed, authors, start, span / n if span else None)
    kinds = generator.rng.choices(list(KIND_SHARES), list(KIND_SHARES.values()), k=n)
    return [generator.event(i, kind) for i, kind in enumerate(kinds)]


def load_or_build(
    n: int,
    *,
    seed: int = 1,
    authors: int = 3000,
    start: int = 0,
    span: int | None = None,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
) -> list[Event]:
    """``build_events``, reusing a JSON-lines copy under ``cache_dir`` when one exists.

    ``cache_dir=None`` disables the cache. The file is written to a temporary name and renamed,
    so an interrupted run never leaves a truncated set behind.
    """
    if cache_dir is None:
        return build_events(n, seed=seed, authors=authors, start=start, span=span)
    window = f"-t{start}+{span}" if span else ""
    path = cache_dir / f"events-v{GENERATOR_VERSION}-n{n}-s{seed}-a{authors}{window}.jsonl"
    if path.exists():
        return msgspec.json.Decoder(Event).decode_lines(path.read_bytes())
    events = build_events(n, seed=seed, authors=authors, start=start, span=span)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(b"".join(encode_event(e) + b"\n" for e in events))
    tmp.replace(path)
    return events
