"""Helpers that run the real PyPI ``nostr-relay`` on 127.0.0.1 for tests, and the fixed events
it serves.

Shared by the crawler tests, the Dagster asset tests and the dbt integration tests, so the
events are deterministic (fixed keys, fixed ``aux_rand``) and the relay is cheap to start:
events are bulk-loaded with ``nostr-relay load`` into a temporary SQLite file before the
server starts, so no event travels through the relay's slow per-connection EVENT path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nostr_assets.demo.relays import RelaySpec, config_text
from nostr_assets.lib.protocol.event import Event, encode_event, sign_event

# 2024-01-01T00:00:00Z: the first hour of the fixed test data.
BASE_HOUR = 1_704_067_200
HOUR = 3600
# Non-replaceable, non-ephemeral kinds only: the relay would keep just the latest kind-0/3
# event per author and drop ephemeral ones, and the tests need every event to stay.
TEST_KINDS = (1, 6, 7, 1111, 9735)
# Secret keys 1..4 (as 32-byte big-endian integers) are valid secp256k1 keys.
SECRET_KEYS = tuple(i.to_bytes(32, "big") for i in range(1, 5))
_AUX = bytes(32)

_RELAY_BIN = Path(sys.executable).with_name("nostr-relay")
_LOAD_SCRIPT = """
import os.path, sys
from alembic import config as alembic_config
import nostr_relay
from nostr_relay.cli import main
from nostr_relay.config import Config
Config.load(sys.argv[1])
ini = os.path.join(os.path.dirname(nostr_relay.__file__), "alembic.ini")
alembic_config.main([f"-c{ini}", "upgrade", "head"])
main(["-c", sys.argv[1], "load", sys.argv[2]], standalone_mode=False)
"""


def make_events(
    hours: int = 3,
    per_hour: int = 30,
    burst: int = 120,
    base_hour: int = BASE_HOUR,
    keys: Iterable[bytes] = SECRET_KEYS,
) -> list[Event]:
    """Signed events spread over ``hours`` hours from ``base_hour``, sorted by (created_at, id).

    Per hour: events exactly at the hour start, at hour end - 1 and at hour end (the next
    hour's first second), ``per_hour`` events spread inside the hour, and in the first hour a
    burst of ``burst`` events sharing one second (base_hour + 1800) over all kinds and keys.
    """
    keys = tuple(keys)
    events: list[Event] = []
    n = 0

    def add(created_at: int, label: str) -> None:
        nonlocal n
        key = keys[n % len(keys)]
        kind = TEST_KINDS[n % len(TEST_KINDS)]
        events.append(sign_event(key, created_at, kind, [["t", "test"]], f"{label} #{n}", _AUX))
        n += 1

    for h in range(hours):
        start = base_hour + h * HOUR
        add(start, "hour start")
        add(start + HOUR - 1, "hour end - 1")
        add(start + HOUR, "hour end")
        for i in range(per_hour):
            # 97 s apart, offset by 13 s: never on the boundaries above.
            add(start + 13 + i * 97, "spread")
    for _ in range(burst):
        add(base_hour + 1800, "burst")
    events.sort(key=lambda e: (e.created_at, e.id))
    return events


def in_window(events: Iterable[Event], since: int, until: int) -> list[Event]:
    """The events a NIP-01 filter {since, until} must return (both bounds inclusive)."""
    return [e for e in events if since <= e.created_at <= until]


@dataclass
class RelayHandle:
    url: str
    port: int
    directory: Path
    process: subprocess.Popen
    events: list[Event] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


NIP11_DEFAULTS = {
    "relay_name": "test relay",
    "relay_description": "nostr-relay started by the nostr-analytics tests",
}


def _config(
    directory: Path,
    port: int,
    max_limit: int,
    nip11: dict[str, str],
    refuse_authors: Iterable[str] = (),
) -> str:
    # The demo's relay configuration, so tests and demo run nostr-relay alike.
    spec = RelaySpec("test", port, max_limit, {**NIP11_DEFAULTS, **nip11}, ())
    return config_text(directory, spec, list(refuse_authors))


def _wait_until_listening(handle: RelayHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            log = (handle.directory / "relay.log").read_text(errors="replace")
            raise RuntimeError(f"nostr-relay exited early:\n{log[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", handle.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    handle.stop()
    raise RuntimeError("nostr-relay did not start listening in time")


def start_relay(
    directory: Path,
    events: Iterable[Event] = (),
    max_limit: int = 50,
    timeout: float = 20.0,
    load_timeout: float = 60.0,
    nip11: dict[str, str] | None = None,
    refuse_authors: Iterable[str] = (),
) -> RelayHandle:
    """Start nostr-relay on a free 127.0.0.1 port, serving ``events`` from a fresh SQLite file.

    ``directory`` must be private to this relay (a ``tmp_path``); call ``handle.stop()`` when
    done. ``max_limit`` is the relay's silent cap per REQ: low, so paging is exercised.
    ``nip11`` sets the relay's NIP-11 fields (relay_name, sysop_pubkey, sysop_contact ...).
    Events by ``refuse_authors`` (hex pubkeys) are refused with OK false.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "config.yaml"
    config.write_text(_config(directory, port, max_limit, nip11 or {}, refuse_authors))
    events = list(events)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (directory / "relay.log").open("ab")
    if events:
        jsonl = directory / "events.jsonl"
        jsonl.write_bytes(b"".join(encode_event(e) + b"\n" for e in events))
        # `load` expects the tables that `serve` creates on start: run the relay's own
        # migration first, then its loader, in one interpreter (one start-up, ~1 s, not two).
        subprocess.run(
            [sys.executable, "-c", _LOAD_SCRIPT, str(config), str(jsonl)],
            cwd=directory,
            env=env,
            stdout=log,
            stderr=log,
            check=True,
            timeout=load_timeout,
        )
    process = subprocess.Popen(
        [str(_RELAY_BIN), "-c", str(config), "serve", "--use-uvicorn"],
        cwd=directory,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    handle = RelayHandle(f"ws://127.0.0.1:{port}", port, directory, process, events)
    _wait_until_listening(handle, timeout)
    return handle
