"""Opening one guarded websocket to a relay, and the vocabulary for a window that ends early.

Its one job is the connection itself: resolve the relay's name through the address guard and
connect to an IP the guard approved, translating every way that can fail into a ``WindowEnded``
with an error class. It is apart from the REQ conversation because the probe opens the same
connection without fetching a window, and both must record failures with the same classes.
``ClientConfig`` lives here as the limits and timeouts every connection is opened with.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from nostr_assets.lib.failures import ErrorClass
from nostr_assets.lib.network.address_guard import AddressRefused, resolve_guarded
from nostr_assets.lib.protocol.relay_url import InvalidRelayUrl, host_and_port


@dataclass
class ClientConfig:
    """Limits and timeouts (seconds) for one relay connection; the defaults suit the crawl."""

    connect_timeout: float = 10.0
    idle_timeout: float = 15.0
    total_timeout: float = 300.0
    max_frame_bytes: int = 2**20
    page_limit: int = 500
    max_events_per_window: int = 500_000
    # Bytes one relay may send for one window. Past it the window is cut and flagged: a relay
    # serving hundreds of huge valid events must not hold the crawl's memory hostage.
    max_window_bytes: int = 64 * 2**20
    # What the unique events of one crawl (one window of every relay) may weigh in memory
    # together; past it every window still open is cut and flagged.
    max_held_bytes: int = 512 * 2**20
    # A relay's NIP-11 document, counted as sent and again as decoded (NOSTR_NIP11_MAX_KB).
    nip11_max_bytes: int = 256 * 1024
    # The smallest cap per REQ a relay is believed to have. A page smaller than this is never
    # taken for a cut one: a relay that holds 1 event in a window is not a relay capped at 1.
    # Real relay software caps at 100 to 5000; tests of tiny caps lower it.
    min_relay_cap: int = 10
    allow_private: bool = False
    # AUTH (NIP-42) challenges are recorded; answering needs a key this crawler does not hold.
    answer_auth: bool = False
    user_agent: str = "nostr-analytics/0.1 (+crawler)"
    # A REQ refused with CLOSED "rate-limited:" is asked again after a pause that starts at
    # rate_limit_backoff and doubles up to rate_limit_max_pause, until the window has paused
    # rate_limit_max_wait in all (total_timeout still bounds the window). Relays limit REQs
    # per minute, so a pause shorter than a minute may not be enough.
    rate_limit_backoff: float = 2.0
    rate_limit_max_pause: float = 32.0
    rate_limit_max_wait: float = 150.0


class WindowEnded(Exception):
    """Ends a window early; the events so far are kept and the reason is recorded."""

    def __init__(self, error_class: ErrorClass, message: str = "") -> None:
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
        raise WindowEnded(ErrorClass.INVALID_URL, error.reason) from None
    except AddressRefused as error:
        if error.reason.startswith("dns"):
            raise WindowEnded(ErrorClass.DNS_FAILED, str(error)) from None
        raise WindowEnded(ErrorClass.REFUSED_ADDRESS, str(error)) from None
    last = WindowEnded(ErrorClass.OS_ERROR, "no address")
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
            last = WindowEnded(
                ErrorClass.TIMEOUT_CONNECT, f"no websocket after {config.connect_timeout}s"
            )
        except websockets.InvalidHandshake as error:
            last = WindowEnded(ErrorClass.HANDSHAKE_FAILED, describe_error(error))
        except ValueError as error:
            # websockets refuses to follow a redirect to another origin when the address is
            # pinned (host=...), and says so with a ValueError: the guard held; record it.
            last = WindowEnded(ErrorClass.REDIRECT_REFUSED, describe_error(error))
        except ssl.SSLError as error:
            last = WindowEnded(ErrorClass.TLS_FAILED, describe_error(error))
        except ConnectionRefusedError as error:
            last = WindowEnded(ErrorClass.CONNECTION_REFUSED, describe_error(error))
        except OSError as error:
            last = WindowEnded(ErrorClass.OS_ERROR, describe_error(error))
        else:
            return ws, ip, (time.perf_counter() - start) * 1000
    raise last
