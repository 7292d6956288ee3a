"""NIP-11 relay information documents: fetch one safely.

About one relay in five serves no document, and those that do serve anything. So
``fetch_nip11`` never raises for network or content problems: it returns a ``Nip11Result``
whose ``error`` is a short code, and keeps the raw text as served so that a later parser can do
better. Parsing is the pure half, ``protocol/nip11.py``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from nostr_assets.lib.failures import Nip11Failure
from nostr_assets.lib.network.address_guard import AddressRefused, resolve_guarded
from nostr_assets.lib.network.content_encoding import TOO_LARGE, BodyRefused, decode_body
from nostr_assets.lib.protocol.nip11 import Nip11Info, parse_nip11
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, host_and_port, normalize_relay_url

# Relays serve the document only for exactly this header (nostr-relay compares it verbatim).
NIP11_ACCEPT = "application/nostr+json"


@dataclass
class Nip11Result:
    """One fetch: what was served, what it parsed to, and why it failed if it did."""

    url: str
    status_code: int | None = None
    raw: str | None = None
    document: dict[str, Any] | None = None
    error: str | None = None  # a Nip11Failure
    detail: str | None = None  # what the error class leaves out: the refusal's own reason
    rtt_ms: float | None = None
    # The address the document was fetched from (None when no connection was made).
    ip: str | None = None
    info: Nip11Info = field(default_factory=Nip11Info)


def _network_error(exc: BaseException) -> Nip11Failure:
    """The failure class of an HTTP error, as the websocket side names the same failure."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return Nip11Failure.TIMEOUT_TOTAL  # the whole fetch is under one timeout
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 10:  # httpx wraps httpcore, which wraps OSError
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return Nip11Failure.TLS_FAILED
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return Nip11Failure.CONNECTION_REFUSED
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return Nip11Failure.PROTOCOL_ERROR
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return Nip11Failure.CONNECTION_CLOSED
    return Nip11Failure.OS_ERROR


async def _get(
    client: httpx.AsyncClient,
    result: Nip11Result,
    ip: str,
    tls: bool,
    host: str,
    port: int,
    path: str,
    max_bytes: int,
) -> None:
    """GET the document from one address, filling ``result``; network errors propagate."""
    scheme = "https" if tls else "http"
    literal = f"[{ip}]" if ":" in ip else ip
    default_port = 443 if tls else 80
    authority = host if ":" not in host else f"[{host}]"
    if port != default_port:
        authority += f":{port}"
    # Connect to the address the guard approved, not to a second DNS answer; the Host header
    # and the TLS server name (SNI, also what the certificate is checked against) keep the name.
    request = client.build_request(
        "GET",
        f"{scheme}://{literal}:{port}{path or '/'}",
        # identity: we would rather have no compression than decode it (see content_encoding).
        headers={"Accept": NIP11_ACCEPT, "Host": authority, "Accept-Encoding": "identity"},
        extensions={"sni_hostname": host} if tls else {},
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        result.status_code = response.status_code
        if response.status_code != 200:
            # Redirects are not followed: the target could be an address the guard refuses.
            result.error = Nip11Failure.HTTP_STATUS  # the status is in status_code
            return
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            result.error = TOO_LARGE
            return
        # Raw bytes only: httpx's own decoders inflate a whole chunk at once, and one chunk of a
        # compressed answer can inflate to gigabytes. The raw body is capped as it arrives,
        # then decode_body undoes any coding without ever producing much more than the cap.
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > max_bytes:
                result.error = TOO_LARGE
                return
        encoding = response.headers.get("content-encoding")
    finally:
        await response.aclose()
    try:
        decoded = decode_body(bytes(body), encoding, max_bytes)
    except BodyRefused as exc:
        result.error = exc.code
        return
    result.raw = decoded.decode("utf-8", "replace")
    result.document, result.info, result.error = parse_nip11(result.raw)


async def fetch_nip11(
    url: str,
    *,
    allow_private: bool,
    timeout: float = 10.0,
    max_bytes: int = 256_000,
    client: httpx.AsyncClient | None = None,
) -> Nip11Result:
    """Fetch and parse a relay's NIP-11 document; never raises for network or content problems.

    ``timeout`` bounds the whole fetch (DNS, connect, body), so a server that drips one byte a
    second cannot hold a worker. ``rtt_ms`` is the time from sending the request to the end of
    the body, including the connection. ``max_bytes`` caps the body both as it arrives and as
    decoded: a server that compresses although asked not to is decoded by bounded decoders, so
    no answer makes the process hold much more than ``max_bytes`` of it. Such an answer can also
    fail with ``unsupported_encoding`` (a coding we cannot decode within the cap: zstd, unknown
    names, brotli without a bounded decoder) or ``bad_encoding`` (corrupt or truncated data).
    """
    try:
        canonical = normalize_relay_url(url)
        host, port, tls = host_and_port(canonical)
    except InvalidRelayUrl as exc:
        return Nip11Result(url=str(url), error=Nip11Failure.INVALID_URL, detail=exc.reason)
    result = Nip11Result(url=canonical)
    path = canonical.split("://", 1)[1].partition("/")[2]
    path = f"/{path}" if path else "/"
    own_client = client is None
    http = httpx.AsyncClient() if client is None else client
    try:
        async with asyncio.timeout(timeout):
            try:
                addresses = await resolve_guarded(canonical, allow_private, timeout)
            except AddressRefused as exc:
                dns = exc.reason.startswith("dns_")
                result.error = Nip11Failure.DNS_FAILED if dns else Nip11Failure.REFUSED_ADDRESS
                result.detail = str(exc)
                return result
            started = time.perf_counter()
            for i, ip in enumerate(addresses):
                result.ip = ip
                try:
                    await _get(http, result, ip, tls, host, port, path, max_bytes)
                    break
                except httpx.ConnectError:
                    if i == len(addresses) - 1:  # otherwise try the next address
                        raise
            result.rtt_ms = round((time.perf_counter() - started) * 1000, 3)
    except (httpx.HTTPError, OSError, TimeoutError) as exc:
        result.error = _network_error(exc)
    finally:
        if own_client:
            await http.aclose()
    return result
