"""One relay, one time window: connect through the address guard, page through the window with
REQ, and report what the relay did (``WindowStats``).

Its one job is ``fetch_window``: tie the parts together and turn every way a window can end
into a stats row, so nothing here raises for relay behaviour: errors end the window, the events
received so far are kept, and the error is recorded in the stats. The parts each have a module:

- ``connection``: the guarded websocket to a checked IP, ``ClientConfig``, ``WindowEnded``;
- ``window_reader``: one REQ to its EOSE, deduplication, ``WindowStats``;
- ``pagination``: which REQs prove the window complete (relays cap silently and disagree on
  whether ``until`` is inclusive), splitting dense seconds by kind and author.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import websockets
from websockets.frames import CloseCode

from nostr_assets.lib.failures import ErrorClass
from nostr_assets.lib.network.connection import (
    ClientConfig,
    WindowEnded,
    describe_error,
    open_connection,
)
from nostr_assets.lib.network.pagination import Pager
from nostr_assets.lib.network.window_reader import Sink, WindowReader, WindowStats


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
    started = time.perf_counter()
    try:
        async with asyncio.timeout(config.total_timeout):
            await _fetch(url, since, until, kinds, config, sink, stats)
    except TimeoutError:
        stats.error_class = ErrorClass.TIMEOUT_TOTAL
        stats.error_message = f"window not finished after {config.total_timeout}s"
    except WindowEnded as ended:
        stats.error_class, stats.error_message = ended.error_class, ended.message
    except websockets.ConnectionClosed as closed:
        too_large = closed.sent is not None and closed.sent.code == CloseCode.MESSAGE_TOO_BIG
        if too_large:
            stats.bad_frames["too_large"] += 1
        stats.error_class = ErrorClass.TOO_LARGE if too_large else ErrorClass.CONNECTION_CLOSED
        stats.error_message = describe_error(closed)
    except OSError as error:
        stats.error_class, stats.error_message = ErrorClass.OS_ERROR, describe_error(error)
    except Exception as error:  # a bug here must not cost the other relays their crawl
        stats.error_class, stats.error_message = ErrorClass.INTERNAL_ERROR, describe_error(error)
    stats.elapsed_ms = (time.perf_counter() - started) * 1000
    return stats


async def _fetch(url, since, until, kinds, config, sink, stats: WindowStats) -> None:
    ws, ip, open_ms = await open_connection(url, config)
    stats.connected_ip, stats.time_to_open_ms = ip, open_ms
    try:
        reader = WindowReader(ws, url, kinds, config, sink, stats)
        await Pager(reader, since, until).run()
    finally:
        await ws.close()
