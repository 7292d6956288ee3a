"""The serving half of the relay farm: thousands of simulated relays in one asyncio process.

Started by ``relay_farm.start_farm`` (``python benchmarks/relay_farm_server.py --manifest M
--worker K --workers N``); it serves the relays of the manifest whose index is K modulo N, one
listening socket per relay on 127.0.0.1:base_port + index, and prints one ``READY`` line once
every socket listens. It stops on SIGTERM, SIGINT or when its standard input closes (the parent
died), and prints one JSON line of counters and its own CPU time on the way out.

Why not the ``websockets`` library: a relay here has nothing to do but splice pre-encoded bytes,
so the cost per frame is what matters. A minimal RFC 6455 server on ``asyncio.Protocol`` (no
compression, no fragmentation on send, client frames unmasked with one big-integer XOR) writes a
whole page, every EVENT frame and its EOSE, in one ``transport.write``. Measured here: 1.2 us of
CPU per event served (100,000 events, 141 MB, in pages of 500: 0.12 s), against about 9 us per
frame through ``websockets``' own server (``await ws.send`` per frame, compression off). Over a
whole crawl of the 2,500-relay hour the farm spent 2.8 s of CPU in 238 s (1,550 connections,
4,054 REQs, 153,357 events): about 1% of one core, so it is never the crawler's bottleneck.

What a relay does is its ``behaviour`` (see ``relay_farm.py`` for the mix):

- ``tarpit``: accepts TCP, never answers the HTTP upgrade;
- ``http502``: answers every HTTP request, upgrade or NIP-11, with 502 Bad Gateway;
- ``silent``: completes the handshake, then never answers a REQ or COUNT (closes politely);
- ``auth`` / ``restricted``: sends ``["AUTH", challenge]`` (auth only) and answers every REQ and
  COUNT with ``CLOSED`` ``auth-required:`` / ``restricted:``;
- ``normal`` / ``slow``: serve; ``rate_limited``: serve, but a connection's REQ beyond
  ``rate_limit`` in the last ``rate_window`` seconds gets ``CLOSED "rate-limited: slow down"``
  (refused REQs do not count, so a client that waits, or reconnects, is served again);
- ``offline`` relays are not listened for at all: the port is closed.

Every answer (the handshake, each REQ's page with its EOSE, CLOSED, COUNT, NOTICE) leaves one
round trip (the relay's ``rtt_ms`` times the farm's ``rtt_scale``) after its request, in order.

REQ semantics (NIP-01): a filter's ``ids``, ``authors``, ``kinds``, ``since``, ``until`` and
single-letter tag filters (``#e`` ...) all apply; several filters are a union; each filter
returns at most ``min(limit, cap)`` events (no ``limit``: the cap; ``limit`` 0: none), the
newest by ``created_at``, ties broken by the LOWEST id first (NIP-01's rule for ``limit``);
the union is sent newest first, then EOSE. ``until`` is exclusive on relays marked so, inclusive
elsewhere. There are no live subscriptions: every REQ ends at its EOSE, and CLOSE is a no-op.
NIP-45 COUNT is answered exactly (no cap) where ``count`` is true; elsewhere it gets a NOTICE
``"ERROR: unknown message type COUNT"`` (what relays without NIP-45 commonly do). EVENT gets
``OK false "blocked: ..."``. A GET with ``Accept: application/nostr+json`` gets a NIP-11 document.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import hashlib
import heapq
import os
import resource
import signal
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import msgspec

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 1 << 20  # client messages larger than this close the connection (1009)
MAX_HEADER = 16 << 10
_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode
SERVING = {"normal", "slow", "rate_limited"}


class _Head(msgspec.Struct):
    """The fields of an event the farm indexes; the rest is only ever spliced as bytes."""

    id: str
    pubkey: str
    created_at: int
    kind: int


class _Tags(msgspec.Struct):
    tags: list[list[str]]


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame (server to client)."""
    return _header(len(payload)) + payload


def _header(n: int) -> bytes:
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class Store:
    """Every event once: its JSON bytes (what is spliced into frames) and the indexed fields."""

    def __init__(self, events_file: Path) -> None:
        data = events_file.read_bytes()
        self.raw: list[bytes] = data.split(b"\n")
        if self.raw and not self.raw[-1]:
            self.raw.pop()
        heads = msgspec.json.Decoder(_Head).decode_lines(data)
        del data
        self.ids = [h.id for h in heads]
        self.pubkeys = [h.pubkey for h in heads]
        self.created = [h.created_at for h in heads]
        self.kinds = [h.kind for h in heads]

    def tags(self, event: int) -> list[list[str]]:
        return msgspec.json.decode(self.raw[event], type=_Tags).tags


class InvalidFilter(ValueError):
    pass


class Relay:
    """One simulated relay: its behaviour and its events, sorted for bisecting.

    Positions index ``order``, which holds the relay's events by (created_at ascending, id
    DESCENDING): the newest-first answer with NIP-01's lowest-id-first ties is then simply the
    highest positions first.
    """

    def __init__(self, info: dict[str, Any], store: Store, rtt_scale: float, stats: Counter):
        self.info, self.store, self.stats = info, store, stats
        self.index: int = info["index"]
        self.behaviour: str = info["behaviour"]
        self.rtt = (info.get("rtt_ms") or 0) / 1000 * rtt_scale
        self.cap: int = info["cap"]
        self.until_exclusive: bool = info["until_exclusive"]
        self.count_supported: bool = info["count"]
        self.rate_limit: int = info["rate_limit"]
        self.rate_window: float = info["rate_window"]
        events = sorted(info["events"], key=store.ids.__getitem__, reverse=True)
        events.sort(key=store.created.__getitem__)  # stable: ties stay id descending
        self.order: list[int] = events
        self.created: list[int] = [store.created[e] for e in events]
        self._by_kind: dict[int, list[int]] | None = None
        self._by_author: dict[str, list[int]] | None = None
        self._by_id: dict[str, int] | None = None
        self.nip11 = self._nip11()

    def _nip11(self) -> bytes:
        nips = [1, 9, 11, 40] + ([42] if self.behaviour == "auth" else [])
        nips += [45] if self.count_supported else []
        return _encode(
            {
                "name": f"farm relay {self.index}",
                "description": f"simulated relay ({self.behaviour})",
                "software": "nostr-analytics relay farm",
                "version": "1",
                "supported_nips": sorted(nips),
                "limitation": {
                    "max_limit": self.cap,
                    "auth_required": self.behaviour == "auth",
                    "restricted_writes": True,
                    "payment_required": self.behaviour == "restricted",
                },
            }
        )

    # Indexes are built on first use: most relays only ever see plain time-window REQs.
    def by_kind(self) -> dict[int, list[int]]:
        if self._by_kind is None:
            self._by_kind = {}
            kinds = self.store.kinds
            for pos, event in enumerate(self.order):
                self._by_kind.setdefault(kinds[event], []).append(pos)
        return self._by_kind

    def by_author(self) -> dict[str, list[int]]:
        if self._by_author is None:
            self._by_author = {}
            pubkeys = self.store.pubkeys
            for pos, event in enumerate(self.order):
                self._by_author.setdefault(pubkeys[event], []).append(pos)
        return self._by_author

    def by_id(self) -> dict[str, int]:
        if self._by_id is None:
            ids = self.store.ids
            self._by_id = {ids[event]: pos for pos, event in enumerate(self.order)}
        return self._by_id

    def select(self, filters: list[Any], capped: bool = True) -> list[int]:
        """Positions answering the union of ``filters``, newest first."""
        chosen: set[int] = set()
        for flt in filters:
            if not isinstance(flt, dict):
                raise InvalidFilter("filter is not an object")
            limit = flt.get("limit")
            if limit is not None and (not isinstance(limit, int) or limit < 0):
                raise InvalidFilter("bad limit")
            n = None
            if capped:
                n = self.cap if limit is None else min(limit, self.cap)
                if n == 0:
                    continue
            chosen.update(islice(self._matching(flt), n))
        return sorted(chosen, reverse=True)

    def _matching(self, flt: dict[str, Any]) -> Iterator[int]:
        """Positions matching one filter, newest first (lazily: the caller stops at the limit)."""
        since, until = flt.get("since"), flt.get("until")
        for value in (since, until):
            if value is not None and not isinstance(value, int):
                raise InvalidFilter("since/until must be integers")
        lo_t = since if since is not None else -(2**63)
        hi_t = until if until is not None else 2**63
        if until is not None and self.until_exclusive:
            hi_t -= 1
        ids, authors, kinds = (_str_set(flt, "ids"), _str_set(flt, "authors"), _int_set(flt))
        tags = {
            key[1]: set(values)
            for key, values in flt.items()
            if len(key) == 2 and key[0] == "#" and isinstance(values, list)
        }
        created, order, store = self.created, self.order, self.store
        source: Iterable[int]
        if ids is not None:
            by_id = self.by_id()
            source = sorted((by_id[i] for i in ids if i in by_id), reverse=True)
        elif authors is not None or kinds is not None:
            index, keys = (
                (self.by_author(), authors) if authors is not None else (self.by_kind(), kinds)
            )
            runs = []
            for key in keys or ():
                run = index.get(key)
                if run:
                    a = bisect.bisect_left(run, lo_t, key=created.__getitem__)
                    b = bisect.bisect_right(run, hi_t, key=created.__getitem__)
                    runs.append(reversed(run[a:b]))
            source = heapq.merge(*runs, reverse=True)
        else:
            a = bisect.bisect_left(created, lo_t)
            b = bisect.bisect_right(created, hi_t)
            source = range(b - 1, a - 1, -1)
        for pos in source:
            if not lo_t <= created[pos] <= hi_t:
                continue
            event = order[pos]
            if kinds is not None and store.kinds[event] not in kinds:
                continue
            if authors is not None and store.pubkeys[event] not in authors:
                continue
            if tags and not _tags_match(store.tags(event), tags):
                continue
            yield pos

    def page(self, sub_json: bytes, positions: list[int]) -> bytes:
        """EVENT frames for ``positions`` and the EOSE, as one buffer."""
        prefix = b'["EVENT",' + sub_json + b","
        extra = len(prefix) + 1
        raw, order = self.store.raw, self.order
        parts = []
        for pos in positions:
            body = raw[order[pos]]
            parts += (_header(extra + len(body)), prefix, body, b"]")
        parts.append(text_frame(b'["EOSE",' + sub_json + b"]"))
        self.stats["events_sent"] += len(positions)
        return b"".join(parts)


def _str_set(flt: dict[str, Any], key: str) -> set[str] | None:
    values = flt.get(key)
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidFilter(f"{key} must be a list of strings")
    return set(values)


def _int_set(flt: dict[str, Any]) -> set[int] | None:
    values = flt.get("kinds")
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise InvalidFilter("kinds must be a list of integers")
    return set(values)


def _tags_match(event_tags: list[list[str]], wanted: dict[str, set[str]]) -> bool:
    for letter, values in wanted.items():
        if not any(len(t) > 1 and t[0] == letter and t[1] in values for t in event_tags):
            return False
    return True


class Connection(asyncio.Protocol):
    """One client connection to one relay: HTTP upgrade, then frames; answers one RTT late."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.stats = relay.stats
        self.buffer = bytearray()
        self.upgraded = False
        self.closing = False
        self.fragments: list[bytes] = []
        self.outbox: deque[tuple[float, bytes, bool]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.served_reqs: deque[float] = deque()
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.stats["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
        self.outbox.clear()

    # Sending: every answer one round trip after its request, in request order.
    def send_later(self, data: bytes, close: bool = False) -> None:
        if self.closing:
            return
        due = self.loop.time() + self.relay.rtt
        if self.outbox:
            due = max(due, self.outbox[-1][0])
        self.outbox.append((due, data, close))
        if self.timer is None:
            self.timer = self.loop.call_at(due, self._flush)

    def _flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        parts, close = [], False
        while self.outbox and self.outbox[0][0] <= now + 0.0005:
            _, data, close = self.outbox.popleft()
            parts.append(data)
            if close:
                break
        if parts and not self.closing:
            data = b"".join(parts)
            self.stats["bytes_sent"] += len(data)
            self.transport.write(data)
        if close:
            self.closing = True
            self.outbox.clear()
            self.transport.close()
        elif self.outbox:
            self.timer = self.loop.call_at(self.outbox[0][0], self._flush)

    def data_received(self, data: bytes) -> None:
        behaviour = self.relay.behaviour
        if behaviour == "tarpit" or self.closing:
            return  # a tarpit reads and forgets: the client waits for a 101 that never comes
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER:
                    self.transport.close()
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            self._http(head)
        if self.upgraded:
            self._frames()

    def _http(self, head: str) -> None:
        lines = head.split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        relay = self.relay
        if relay.behaviour == "http502":
            self.stats["http_502"] += 1
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self.send_later(_http_response("502 Bad Gateway", "text/html", body), close=True)
            return
        key = headers.get("sec-websocket-key")
        if "websocket" not in headers.get("upgrade", "").lower() or not key:
            if headers.get("accept", "") == "application/nostr+json":
                self.stats["nip11"] += 1
                body, kind = relay.nip11, "application/nostr+json"
            else:
                body, kind = b"Please use a Nostr client to connect.", "text/plain"
            self.send_later(_http_response("200 OK", kind, body), close=True)
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())
        response = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        if relay.behaviour == "auth":
            challenge = hashlib.sha256(b"%d:%d" % (relay.index, self.stats["connections"]))
            challenge = challenge.hexdigest()[:32]
            response += text_frame(_encode(["AUTH", challenge]))
        self.upgraded = True
        self.stats["handshakes"] += 1
        self.send_later(response)

    def _frames(self) -> None:
        buffer = self.buffer
        while not self.closing:
            n = len(buffer)
            if n < 2:
                return
            b0, b1 = buffer[0], buffer[1]
            length, offset = b1 & 0x7F, 2
            if length == 126:
                if n < 4:
                    return
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if n < 10:
                    return
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if length > MAX_MESSAGE:
                self._close(1009)
                return
            mask = b""
            if b1 & 0x80:
                if n < offset + 4:
                    return
                mask = bytes(buffer[offset : offset + 4])
                offset += 4
            if n < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if mask:
                payload = _unmask(payload, mask)
            self._frame(b0 & 0x80, b0 & 0x0F, payload)

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == 0x8:  # close: echo the code, then close the TCP connection
            self.closing = True
            code = payload[:2] if len(payload) >= 2 else (1000).to_bytes(2, "big")
            self.transport.write(b"\x88\x02" + code)
            self.transport.close()
        elif opcode == 0x9:  # ping
            self.transport.write(bytes((0x8A, len(payload[:125]))) + payload[:125])
        elif opcode in (0x1, 0x2, 0x0):
            self.fragments.append(payload)
            if sum(map(len, self.fragments)) > MAX_MESSAGE:
                self._close(1009)
            elif fin:
                message = b"".join(self.fragments)
                self.fragments = []
                self._message(message)

    def _close(self, code: int) -> None:
        self.closing = True
        self.transport.write(b"\x88\x02" + code.to_bytes(2, "big"))
        self.transport.close()

    def _notice(self, text: str) -> None:
        self.send_later(text_frame(_encode(["NOTICE", text])))

    def _message(self, text: bytes) -> None:
        relay = self.relay
        if relay.behaviour == "silent":
            self.stats["ignored_silent"] += 1
            return
        try:
            message = _decode(text)
        except msgspec.DecodeError:
            self._notice("error: could not parse message as JSON")
            return
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            self._notice("error: expected a JSON array starting with a message type")
            return
        verb = message[0]
        if verb == "REQ" or (verb == "COUNT" and relay.count_supported):
            self._query(verb, message)
        elif verb == "COUNT":
            self.stats["count_unsupported"] += 1
            self._notice("ERROR: unknown message type COUNT")
        elif verb == "CLOSE":
            self.stats["close"] += 1
        elif verb == "EVENT":
            event = message[1] if len(message) > 1 and isinstance(message[1], dict) else {}
            event_id = event.get("id", "") if isinstance(event.get("id"), str) else ""
            reply = ["OK", event_id, False, "blocked: this relay farm is read-only"]
            self.send_later(text_frame(_encode(reply)))
        elif verb != "AUTH":
            self._notice(f"ERROR: unknown message type {verb[:20]}")

    def _query(self, verb: str, message: list[Any]) -> None:
        relay, stats = self.relay, self.stats
        if len(message) < 3 or not isinstance(message[1], str):
            self._notice(f"error: {verb} needs a subscription id and filters")
            return
        sub_json = _encode(message[1])
        if relay.behaviour in ("auth", "restricted"):
            stats[f"closed_{relay.behaviour}"] += 1
            reason = (
                "auth-required: this relay serves authenticated users only (NIP-42)"
                if relay.behaviour == "auth"
                else "restricted: this relay serves its paying members only"
            )
            self._closed(sub_json, reason)
            return
        if verb == "REQ" and relay.behaviour == "rate_limited":
            now = self.loop.time()
            served = self.served_reqs
            while served and served[0] <= now - relay.rate_window:
                served.popleft()
            if len(served) >= relay.rate_limit:
                stats["closed_rate_limited"] += 1
                self._closed(sub_json, "rate-limited: slow down")
                return
            served.append(now)
        started = time.process_time()
        try:
            positions = relay.select(message[2:], capped=verb == "REQ")
        except InvalidFilter as error:
            self._closed(sub_json, f"error: {error}")
            return
        if verb == "COUNT":
            stats["counts"] += 1
            body = b'["COUNT",' + sub_json + b',{"count":%d}]' % len(positions)
            self.send_later(text_frame(body))
        else:
            stats["reqs"] += 1
            self.send_later(relay.page(sub_json, positions))
        stats["query_cpu_us"] += int((time.process_time() - started) * 1e6)

    def _closed(self, sub_json: bytes, reason: str) -> None:
        self.send_later(text_frame(b'["CLOSED",' + sub_json + b"," + _encode(reason) + b"]"))


def _http_response(status: str, content_type: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nAccess-Control-Allow-Origin: *\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def serve(manifest_path: Path, worker: int, workers: int) -> Counter:
    manifest = msgspec.json.decode(manifest_path.read_bytes())
    stats: Counter = Counter()
    store = Store(Path(manifest["events_file"]))
    host, rtt_scale = manifest["host"], manifest["spec"]["rtt_scale"]
    servers = []
    # An offline relay's port is bound but never listened on: a connection is refused at once,
    # as at a closed port, and no other program (or farm) can take the port meanwhile.
    offline = []
    for info in manifest["relays"]:
        if info["index"] % workers != worker:
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, info["port"]))
        except OSError as error:
            sock.close()
            for other in offline:
                other.close()
            raise SystemExit(f"BIND_FAILED {info['port']}: {error}") from None
        if info["behaviour"] == "offline":
            offline.append(sock)
            continue
        relay = Relay(info, store, rtt_scale, stats)
        sock.listen(256)
        servers.append(
            await asyncio.get_running_loop().create_server(
                lambda relay=relay: Connection(relay), sock=sock
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The parent holds our stdin open: when it dies, the pipe closes and the farm stops too.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_parent() -> None:
        await reader.read()
        stop.set()

    watcher = asyncio.create_task(watch_parent())
    stats["relays_listening"] = len(servers)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats["startup_user_ms"] = int(usage.ru_utime * 1000)
    stats["startup_sys_ms"] = int(usage.ru_stime * 1000)
    print(f"READY {len(servers)}", flush=True)
    await stop.wait()
    watcher.cancel()
    for server in servers:
        server.close()
    for sock in offline:
        sock.close()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    raise_open_files_limit()
    started = time.perf_counter()
    stats = asyncio.run(serve(args.manifest, args.worker, args.workers))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # Serving alone, without loading: user time is Python's, system time mostly the loopback
    # TCP stack (on 127.0.0.1 the sender's send() also delivers into the receiver's buffer).
    stats["serve_user_ms"] = int(usage.ru_utime * 1000) - stats["startup_user_ms"]
    stats["serve_sys_ms"] = int(usage.ru_stime * 1000) - stats["startup_sys_ms"]
    stats["serve_cpu_ms"] = stats["serve_user_ms"] + stats["serve_sys_ms"]
    stats["cpu_ms"] = int((usage.ru_utime + usage.ru_stime) * 1000)
    stats["max_rss_kb"] = usage.ru_maxrss
    stats["wall_ms"] = int((time.perf_counter() - started) * 1000)
    stats["pid"] = os.getpid()
    print("STATS " + _encode(dict(stats)).decode(), flush=True)


if __name__ == "__main__":
    main()
