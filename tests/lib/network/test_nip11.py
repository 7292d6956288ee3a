"""Protects NIP-11 fetching and lenient parsing.

A real nostr-relay on 127.0.0.1 serves a real document; the address guard refuses that same
relay when private addresses are not allowed; a small fault-injecting HTTP server produces what
no healthy relay does on demand (oversized, non-JSON, slow, redirecting, non-UTF-8 answers, and
compressed ones although the client asked for identity: valid, corrupt, of unknown codings, and
decompression bombs); and ``parse_nip11`` is fed malformed documents directly. Nothing here may
make ``fetch_nip11`` raise, and no answer may make it hold much more than ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
import tracemalloc
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from relays import free_port, start_relay

from nostr_assets.lib.network.content_encoding import (
    SUPPORTED_CODINGS,
    TOO_LARGE,
    BodyRefused,
    decode_body,
)
from nostr_assets.lib.network.nip11_fetch import NIP11_ACCEPT, fetch_nip11
from nostr_assets.lib.protocol.nip11 import Nip11Info, parse_nip11

RELAY_NAME = "nip11 test relay"
PUBKEY = "ab" * 32


@pytest.fixture(scope="module")
def relay_url(tmp_path_factory: pytest.TempPathFactory):
    """The real PyPI nostr-relay, started for this module with its own NIP-11 fields."""
    handle = start_relay(
        tmp_path_factory.mktemp("nip11-relay"),
        nip11={
            "relay_name": RELAY_NAME,
            "relay_description": "serves NIP-11 to the nostr-analytics tests",
            "sysop_pubkey": PUBKEY,
            "sysop_contact": "ops@example.com",
        },
    )
    yield handle.url
    handle.stop()


class _FaultHandler(BaseHTTPRequestHandler):
    """A fake relay HTTP endpoint: it exists only to inject faults a real relay won't produce.

    ``encoded`` maps a path to a pre-built body and the Content-Encoding it is served with (see
    the ``encoded_answers`` fixture): compression bombs and corrupt streams among them, which no
    real relay sends, least of all to a client that asked for identity.
    """

    requests: list[dict[str, str | None]] = []
    encoded: dict[str, tuple[bytes, str]] = {}

    def log_message(self, *args: object) -> None:  # keep pytest output quiet
        pass

    def _send(self, status: int, body: bytes, length: bool = True, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests.append(
            {
                "path": self.path,
                "accept": self.headers.get("Accept"),
                "host": self.headers.get("Host"),
                "encoding": self.headers.get("Accept-Encoding"),
            }
        )
        path = self.path
        if path == "/ok":
            doc = {"name": "fake", "supported_nips": [1, "11", "x", 2.5, True]}
            self._send(200, json.dumps(doc).encode())
        elif path == "/big":  # no Content-Length: only the streaming cap can stop it
            self._send(200, b'{"name": "' + b"x" * 300_000 + b'"}', length=False)
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", "10000000")
            self.end_headers()
        elif path == "/html":
            self._send(200, b"<html><body>try using a nostr client</body></html>")
        elif path == "/array":
            self._send(200, b"[1, 2, 3]")
        elif path == "/latin1":  # invalid UTF-8 inside a string
            self._send(200, b'{"name": "caf\xe9", "description": "ok"}')
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"name"')
            self.wfile.flush()
            time.sleep(3)
        elif path == "/gzip":  # compressed although the client asked for identity
            body = gzip.compress(json.dumps({"name": "zipped"}).encode())
            self._send(200, body, Content_Encoding="gzip")
        elif path == "/redirect":
            self._send(302, b"", Location="http://169.254.169.254/latest/meta-data/")
        elif path in self.encoded:
            body, coding = self.encoded[path]
            self._send(200, body, Content_Encoding=coding)
        else:
            self._send(404, b"not found")


@pytest.fixture(scope="module")
def fault_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FaultHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(url: str, **kwargs):
    kwargs.setdefault("allow_private", True)
    return asyncio.run(fetch_nip11(url, **kwargs))


MAX_BYTES = 256_000  # fetch_nip11's default cap
BOMB_SIZE = 50 * 1024 * 1024  # what each bomb inflates to: 200 times the cap
ENCODED_DOC = json.dumps({"name": "encoded", "description": "d" * 2000}).encode()


def _zlib_bomb(wbits: int, size: int = BOMB_SIZE) -> bytes:
    """``size`` spaces compressed by zlib, a megabyte at a time (the bomb never exists inflated)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b" " * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, compressor.flush()])


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.fixture(scope="module")
def encoded_answers(fault_server: str) -> str:
    """Registers the compressed answers with the fault server, built before any is measured."""
    gzip_bomb = _zlib_bomb(16 + zlib.MAX_WBITS)
    half = len(ENCODED_DOC) // 2
    answers = {
        "/enc/gzip": (gzip.compress(ENCODED_DOC), "gzip"),
        "/enc/x-gzip-two-members": (
            gzip.compress(ENCODED_DOC[:half]) + gzip.compress(ENCODED_DOC[half:]),
            "x-gzip",
        ),
        "/enc/gzip-gzip": (gzip.compress(gzip.compress(ENCODED_DOC)), "gzip, gzip"),
        "/enc/deflate-zlib": (zlib.compress(ENCODED_DOC), "deflate"),
        "/enc/deflate-raw": (_raw_deflate(ENCODED_DOC), "deflate"),
        "/enc/identity-gzip": (gzip.compress(ENCODED_DOC), "Identity, GZIP"),
        "/bomb/gzip": (gzip_bomb, "gzip"),
        # The inner layer fits the cap (about 50 kB); only the outer one explodes.
        "/bomb/gzip-gzip": (gzip.compress(gzip_bomb), "gzip, gzip"),
        "/bomb/deflate": (_zlib_bomb(zlib.MAX_WBITS), "deflate"),
        "/bad/gzip-corrupt": (b"\x1f\x8b\x08\x00" + b"\xa5" * 200, "gzip"),
        "/bad/gzip-truncated": (gzip.compress(ENCODED_DOC)[:-40], "gzip"),
        "/bad/gzip-trailing-junk": (gzip.compress(ENCODED_DOC) + b"junk", "gzip"),
        "/bad/deflate-corrupt": (b"\xff" * 200, "deflate"),
        "/bad/zstd": (b"\x28\xb5\x2f\xfd" + b"\x00" * 50, "zstd"),
        "/bad/unknown": (ENCODED_DOC, "snappy"),
        "/bad/gzip-unknown": (gzip.compress(ENCODED_DOC), "gzip, snappy"),
    }
    try:
        import brotli
    except ImportError:  # brotli is optional (aiohttp's speedups bring it)
        pass
    else:
        compressor = brotli.Compressor(quality=5)
        block = b" " * (1 << 20)
        parts = [compressor.process(block) for _ in range(BOMB_SIZE // len(block))]
        answers["/bomb/br"] = (b"".join([*parts, compressor.finish()]), "br")
        answers["/enc/br"] = (brotli.compress(ENCODED_DOC), "br")
        answers["/bad/br-corrupt"] = (b"\xff" * 200, "br")
        answers["/bad/br-truncated"] = (brotli.compress(b" " * 100_000)[:-2], "br")
    for body, _ in answers.values():
        assert len(body) < MAX_BYTES / 4, "every answer must pass the raw cap to be decoded"
    _FaultHandler.encoded.update(answers)
    # A process's first fetch imports and caches several megabytes (httpx, h11, asyncio): done
    # here, so that a memory peak measured later is the decoding's alone, whatever tests run.
    assert fetch(fault_server + "/ok").error is None
    return fault_server


def _brotli_case(path: str, error: str | None) -> tuple[str, str | None]:
    """Where brotli cannot bound its output, every br answer is refused instead."""
    return path, error if "br" in SUPPORTED_CODINGS else "unsupported_encoding"


def fetch_measured(url: str, **kwargs):
    """``fetch`` and the peak of memory Python allocated meanwhile (zlib's output included)."""
    tracemalloc.start()
    try:
        result = fetch(url, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.slow
def test_real_relay_document(relay_url: str) -> None:
    result = fetch(relay_url + "/")
    assert result.error is None
    assert result.status_code == 200
    assert result.url == relay_url
    assert result.ip == "127.0.0.1"
    assert result.rtt_ms is not None and result.rtt_ms > 0
    assert json.loads(result.raw) == result.document
    info = result.info
    assert info.name == RELAY_NAME
    assert info.pubkey == PUBKEY
    assert info.contact == "ops@example.com"
    assert info.software and "nostr_relay" in info.software
    assert info.supported_nips is not None and 11 in info.supported_nips
    # nostr-relay publishes no limitation object: those fields stay unknown, not zero.
    assert info.max_limit is None and info.auth_required is None


def test_loopback_refused_without_permission(relay_url: str, fault_server: str) -> None:
    refused = fetch(relay_url, allow_private=False)
    assert (refused.error, refused.detail) == ("refused_address", "loopback: 127.0.0.1")
    before = len(_FaultHandler.requests)
    result = fetch(fault_server + "/ok", allow_private=False)
    assert result.error == "refused_address"
    assert result.status_code is None and result.raw is None and result.ip is None
    assert len(_FaultHandler.requests) == before, "the guard must refuse before connecting"


def test_sends_exactly_the_nip11_accept_header(fault_server: str) -> None:
    result = fetch(fault_server + "/ok")
    assert result.error is None
    seen = _FaultHandler.requests[-1]
    assert seen["accept"] == NIP11_ACCEPT == "application/nostr+json"
    assert seen["host"] == fault_server.removeprefix("ws://")
    assert seen["encoding"] == "identity"
    assert result.info.supported_nips == [1, 11]


@pytest.mark.parametrize(
    ("path", "error", "status"),
    [
        ("/big", "too_large", 200),
        ("/big-declared", "too_large", 200),
        ("/html", "not_json", 200),
        ("/array", "not_an_object", 200),
        ("/missing", "http_status", 404),
        ("/redirect", "http_status", 302),
    ],
)
def test_faults_become_error_codes(fault_server: str, path: str, error: str, status: int) -> None:
    result = fetch(fault_server + path, max_bytes=256_000)
    assert (result.error, result.status_code) == (error, status)
    assert result.document is None
    if error == "not_json":
        assert result.raw and "nostr client" in result.raw  # kept as served
    if error == "too_large":
        assert result.raw is None


def test_redirect_is_not_followed(fault_server: str) -> None:
    fetch(fault_server + "/redirect")
    assert _FaultHandler.requests[-1]["path"] == "/redirect"


def test_asks_for_identity_but_decodes_compressed_answers(fault_server: str) -> None:
    result = fetch(fault_server + "/gzip")
    assert (result.error, result.info.name) == (None, "zipped")
    assert result.raw == '{"name": "zipped"}'


@pytest.mark.parametrize(
    "path",
    [
        "/enc/gzip",
        "/enc/x-gzip-two-members",
        "/enc/gzip-gzip",
        "/enc/deflate-zlib",
        "/enc/deflate-raw",
        "/enc/identity-gzip",
        "/enc/br",
    ],
)
def test_compressed_documents_are_decoded(encoded_answers: str, path: str) -> None:
    if path not in _FaultHandler.encoded:
        pytest.skip("brotli is not installed")
    result = fetch(encoded_answers + path)
    if path == "/enc/br" and "br" not in SUPPORTED_CODINGS:
        assert result.error == "unsupported_encoding"
        return
    assert result.error is None
    assert result.raw == ENCODED_DOC.decode()
    assert result.info.name == "encoded"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/bomb/gzip", "too_large"),
        ("/bomb/gzip-gzip", "too_large"),
        ("/bomb/deflate", "too_large"),
        _brotli_case("/bomb/br", "too_large"),
        ("/bad/gzip-corrupt", "bad_encoding"),
        ("/bad/gzip-truncated", "bad_encoding"),
        ("/bad/gzip-trailing-junk", "bad_encoding"),
        ("/bad/deflate-corrupt", "bad_encoding"),
        _brotli_case("/bad/br-corrupt", "bad_encoding"),
        _brotli_case("/bad/br-truncated", "bad_encoding"),
        ("/bad/zstd", "unsupported_encoding"),
        ("/bad/unknown", "unsupported_encoding"),
        ("/bad/gzip-unknown", "unsupported_encoding"),
    ],
)
def test_compression_faults_are_refused_in_bounded_memory(
    encoded_answers: str, path: str, error: str
) -> None:
    if path not in _FaultHandler.encoded:
        pytest.skip("brotli is not installed")
    result, peak = fetch_measured(encoded_answers + path, max_bytes=MAX_BYTES)
    assert (result.error, result.status_code) == (error, 200)
    assert result.raw is None and result.document is None
    # A bomb inflates to 50 MiB; the decoders may hold the cap and a step more, not the bomb.
    assert peak < 5 * MAX_BYTES, f"{path}: peak {peak:,} bytes"


@pytest.mark.parametrize("size", [MAX_BYTES, MAX_BYTES + 1])
def test_decoded_cap_is_exact(size: int) -> None:
    body = b" " * size
    encodings = [
        ("gzip", gzip.compress(body)),
        ("deflate", zlib.compress(body)),
        ("deflate", _raw_deflate(body)),
        ("gzip, gzip", gzip.compress(gzip.compress(body))),
        (None, body),
    ]
    if "br" in SUPPORTED_CODINGS:
        import brotli

        encodings.append(("br", brotli.compress(body)))
    for coding, encoded in encodings:
        if size <= MAX_BYTES:
            assert decode_body(encoded, coding, MAX_BYTES) == body, coding
        else:
            with pytest.raises(BodyRefused) as refused:
                decode_body(encoded, coding, MAX_BYTES)
            assert refused.value.code == TOO_LARGE, coding


def test_slow_server_times_out_within_budget(fault_server: str) -> None:
    started = time.monotonic()
    result = fetch(fault_server + "/slow", timeout=0.5)
    assert result.error == "timeout_total"
    assert time.monotonic() - started < 2.5


def test_invalid_utf8_is_decoded_leniently(fault_server: str) -> None:
    result = fetch(fault_server + "/latin1")
    assert result.error is None
    assert result.info.name == "caf\ufffd"
    assert result.info.description == "ok"


def test_network_and_url_failures_never_raise() -> None:
    for url, reason in [
        ("http://relay.example.com", "bad_scheme"),
        ("wss://user:pw@relay.example.com", "has_credentials"),
    ]:
        result = fetch(url)
        assert (result.error, result.detail) == ("invalid_url", reason)
    result = fetch(f"ws://127.0.0.1:{free_port()}", timeout=3)
    assert result.error == "connection_refused"
    assert result.ip == "127.0.0.1"


def test_parse_full_document() -> None:
    raw = json.dumps(
        {
            "name": "r",
            "description": "d",
            "pubkey": PUBKEY.upper(),
            "contact": "c",
            "software": "git+https://github.com/hoytech/strfry.git",
            "version": "1.0",
            "supported_nips": [1, 11, 42],
            "limitation": {
                "max_limit": 500,
                "max_message_length": "131072",
                "max_subscriptions": 20.0,
                "payment_required": False,
                "auth_required": True,
                "restricted_writes": False,
            },
        }
    )
    doc, info, error = parse_nip11(raw.encode())
    assert error is None and doc["name"] == "r"
    assert info == Nip11Info(
        name="r",
        description="d",
        pubkey=PUBKEY,
        contact="c",
        software="git+https://github.com/hoytech/strfry.git",
        version="1.0",
        supported_nips=[1, 11, 42],
        max_limit=500,
        max_message_length=131072,
        max_subscriptions=20,
        payment_required=False,
        auth_required=True,
        restricted_writes=False,
    )


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", "not_json"),
        ("<html>", "not_json"),
        ('{"name": "x"', "not_json"),
        ("[" * 100_000, "not_json"),  # nesting deep enough to exhaust the recursion limit
        ("null", "not_an_object"),
        ('"a string"', "not_an_object"),
        ("42", "not_an_object"),
    ],
)
def test_parse_refuses_non_documents(raw: str, error: str) -> None:
    assert parse_nip11(raw) == (None, Nip11Info(), error)


def test_parse_wrong_types_become_none() -> None:
    raw = json.dumps(
        {
            "name": 7,
            "description": ["d"],
            "pubkey": "not-hex",
            "contact": None,
            "software": {"x": 1},
            "version": 2,
            "supported_nips": "1,11",
            "limitation": {
                "max_limit": -1,
                "max_message_length": "12kb",
                "max_subscriptions": True,
                "payment_required": "false",
                "auth_required": 1,
                "restricted_writes": None,
            },
        }
    )
    doc, info, error = parse_nip11(raw)
    assert error is None and doc is not None
    assert info == Nip11Info()


def test_parse_lenient_edges() -> None:
    _, info, error = parse_nip11(
        '\ufeff{"name": "bad \\ud800 surrogate", "supported_nips": [1, "2", " 3 ", "x", null, -4,'
        ' 1.5, 11.0], "limitation": "none"}'
    )
    assert error is None
    info.name.encode("utf-8")  # a lone surrogate would make this raise
    assert info.name.startswith("bad ")
    assert info.supported_nips == [1, 2, 3, 11]
    assert info.max_limit is None
    _, empty, _ = parse_nip11('{"supported_nips": []}')
    assert empty.supported_nips == []
