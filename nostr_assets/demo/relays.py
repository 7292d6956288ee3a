"""The demo's relays: real nostr-relay servers (PyPI `nostr-relay`), each on a loopback address
of its own (127.0.0.2, 127.0.0.3, ...; all on 127.0.0.1 where no other can be bound), each
loaded with its events before it starts, and all stopped again whatever happens.

The events are written into each relay's SQLite file before its server starts, through the
relay's own migration and table definitions (``_LOAD_SCRIPT``); a server starts as soon as its
file is ready, so its start-up overlaps the loading of the next. Every relay runs in a process
group of its own, so stopping it stops whatever it started; on Linux it also gets SIGTERM from
the kernel if the demo dies without cleaning up (SIGKILL), so no relay outlives the demo."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from nostr_assets.lib.protocol.event import Event, encode_event

HOST = "127.0.0.1"
# The first relay's address; the others follow (127.0.0.3, ...). Linux routes all of
# 127.0.0.0/8 to the loopback interface, so a relay per address needs no set-up there, and a
# GeoIP database can place each relay on its own (geoip.py). macOS configures 127.0.0.1 only.
FIRST_OWN_HOST = 2
RELAY_BIN = Path(sys.executable).with_name("nostr-relay")
# Run in one interpreter for every relay: nostr-relay's own migration creates its tables, then
# the events go into them in one transaction per relay, through the relay's own table
# definitions, with the tag rows its `process_tags` writes (single-letter tags, `delegation`,
# `expiration`). Its `load` command adds events one by one (pre-save query, insert, tags, a
# transaction each): 22 s for the demo's four relays here, against 4 s this way, imports and
# migrations included. Loaded newest first, `load` keeps every event anyway (see network.py),
# so the relays end the same.
_LOAD_SCRIPT = """
import os.path, sys
import sqlalchemy as sa
from alembic import config as alembic_config
import nostr_relay
from nostr_relay.config import Config
from nostr_relay.storage import get_metadata
from nostr_relay.util import json_loads

ini = os.path.join(os.path.dirname(nostr_relay.__file__), "alembic.ini")
for config_path, jsonl in zip(sys.argv[1::2], sys.argv[2::2]):
    Config.load(config_path, reload=True)
    alembic_config.main([f"-c{ini}", "upgrade", "head"])
    tables = get_metadata().tables
    events, tags = [], []
    with open(jsonl, encoding="utf-8") as lines:
        for line in lines:
            e = json_loads(line)
            event_id = bytes.fromhex(e["id"])
            events.append(dict(
                id=event_id, created_at=e["created_at"], kind=e["kind"],
                pubkey=bytes.fromhex(e["pubkey"]), tags=e["tags"], sig=bytes.fromhex(e["sig"]),
                content=e["content"],
            ))
            indexed = {
                (t[0], t[1] if len(t) > 1 else "")
                for t in e["tags"] if t and (len(t[0]) == 1 or t[0] in ("delegation", "expiration"))
            }
            tags.extend(dict(id=event_id, name=n, value=v) for n, v in sorted(indexed))
    url = Config.storage["sqlalchemy.url"].replace("+aiosqlite", "")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(tables["events"].insert(), events)
        if tags:
            conn.execute(tables["tags"].insert(), tags)
    engine.dispose()
    print("loaded", config_path, flush=True)
"""
_PR_SET_PDEATHSIG = 1


class RelayError(RuntimeError):
    """A relay could not be loaded or started; the message holds the end of its log."""


@dataclass(frozen=True)
class RelaySpec:
    """One relay to run: its NIP-11 fields, its cap, and the events it holds."""

    name: str
    port: int
    max_limit: int  # the silent cap on the events one REQ returns
    nip11: dict[str, str]  # relay_name, relay_description, sysop_pubkey, sysop_contact
    events: Sequence[Event]  # in load order
    host: str = HOST

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"


@dataclass
class RunningRelay:
    spec: RelaySpec
    directory: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return self.spec.url


def relay_installed() -> bool:
    return RELAY_BIN.exists()


def free_ports(hosts: Sequence[str]) -> list[int]:
    """A port free now on each of ``hosts``, in order (all held open while choosing, so the
    kernel cannot hand out one twice). OSError when a host cannot be bound."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in hosts]
        for sock, host in zip(sockets, hosts, strict=True):
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def relay_addresses(count: int) -> tuple[list[tuple[str, int]], bool]:
    """``count`` (host, free port) pairs, one loopback address per relay (127.0.0.2, ...);
    where one of those cannot be bound, every relay on 127.0.0.1. The flag says whether each
    relay has an address of its own."""
    own = [f"127.0.0.{FIRST_OWN_HOST + i}" for i in range(count)]
    try:
        return list(zip(own, free_ports(own), strict=True)), True
    except OSError:  # EADDRNOTAVAIL: no such address on this machine's loopback interface
        shared = [HOST] * count
        return list(zip(shared, free_ports(shared), strict=True)), False


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def config_text(directory: Path, spec: RelaySpec, refuse_authors: Sequence[str] = ()) -> str:
    """nostr-relay's configuration: size and signature checks only (its hellthread validator
    would refuse contact lists, which follow hundreds), the cap as `max_limit`, quiet logs.
    Events by ``refuse_authors`` (hex pubkeys) get OK false, from nostr-relay's own blacklist."""
    nip11 = "\n".join(f"{key}: {_yaml_text(value)}" for key, value in spec.nip11.items())
    blacklist = "    - nostr_relay.validators.is_author_blacklisted\n" if refuse_authors else ""
    listed = "".join(f"  - {key}\n" for key in refuse_authors)
    listed = f"pubkey_blacklist:\n{listed}" if listed else ""
    return f"""\
DEBUG: false
{nip11}
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{directory / "nostr.sqlite3"}
  num_concurrent_reqs: 10
  num_concurrent_adds: 2
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
{blacklist}verification:
  nip05_verification: disabled
gunicorn:
  bind: {spec.host}:{spec.port}
  # `serve --use-uvicorn` takes only the port from `bind`; uvicorn reads the address here.
  host: {spec.host}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: false
max_limit: {spec.max_limit}
max_event_size: 1000000
message_timeout: 1800
subscription_limit: 32
{listed}logging:
  version: 1
  root:
    level: WARNING
"""


def _yaml_text(value: str) -> str:
    # A JSON string is a YAML double-quoted scalar: descriptions may hold `:` or `#`.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """``preexec_fn`` of the demo's children: on Linux, SIGTERM when the demo dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _log_tail(directory: Path) -> str:
    log = directory / "relay.log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _serve(spec: RelaySpec, directory: Path) -> RunningRelay:
    with (directory / "relay.log").open("ab") as log:
        process = subprocess.Popen(
            [str(RELAY_BIN), "-c", str(directory / "config.yaml"), "serve", "--use-uvicorn"],
            cwd=directory,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    return RunningRelay(spec, directory, process)


def start_relays(
    specs: Iterable[RelaySpec], root: Path, timeout: float = 60.0
) -> list[RunningRelay]:
    """Load and start every relay under ``root/<name>/`` (its old data removed first); returns
    them listening. Each server starts as soon as its events are in: its start-up (about 3 s
    of imports) overlaps the loading of the next relays.

    On any failure (or interruption) the relays started so far are stopped before the error
    propagates.
    """
    specs = list(specs)
    by_config: dict[str, RelaySpec] = {}
    for spec in specs:
        directory = root / spec.name
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("nostr.sqlite3*"):
            old.unlink()
        config = directory / "config.yaml"
        config.write_text(config_text(directory, spec))
        (directory / "events.jsonl").write_bytes(
            b"".join(encode_event(e) + b"\n" for e in spec.events)
        )
        by_config[str(config)] = spec
    log = root / "load.log"
    deadline = time.monotonic() + timeout
    running: list[RunningRelay] = []
    out = log.open("ab")
    loader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _LOAD_SCRIPT,
            *(arg for c in by_config for arg in (c, str(Path(c).with_name("events.jsonl")))),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=out,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        assert loader.stdout is not None
        for line in loader.stdout:  # "loaded <config path>" per relay; the rest goes to the log
            word, _, path = line.decode(errors="replace").strip().partition(" ")
            if word == "loaded" and path in by_config:
                spec = by_config[path]
                running.append(_serve(spec, root / spec.name))
            else:
                out.write(line)
        if loader.wait(timeout=max(0.1, deadline - time.monotonic())) != 0:
            out.flush()
            tail = log.read_text(errors="replace")[-2000:]
            raise RelayError(f"loading the relays' events failed:\n{tail}")
        _wait_listening(running, deadline)
    except BaseException:
        if loader.poll() is None:
            os.killpg(loader.pid, signal.SIGKILL)
            loader.wait()
        stop_relays(running)
        raise
    finally:
        if loader.stdout is not None:
            loader.stdout.close()
        out.close()
    return running


def _wait_listening(relays: list[RunningRelay], deadline: float) -> None:
    waiting = list(relays)
    while waiting:
        for relay in list(waiting):
            if relay.process.poll() is not None:
                raise RelayError(
                    f"relay {relay.spec.name} exited early:\n{_log_tail(relay.directory)}"
                )
            if port_open(relay.spec.host, relay.spec.port):
                waiting.remove(relay)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(r.spec.name for r in waiting)
            raise RelayError(f"relays not listening in time: {names}")
        if waiting:
            time.sleep(0.05)


def stop_relays(relays: Iterable[RunningRelay]) -> None:
    """Stop every relay: SIGTERM, SIGKILL for those still there after 5 s."""
    stop_process_groups([relay.process for relay in relays])


def stop_process_groups(
    processes: Sequence[subprocess.Popen], first: int = signal.SIGTERM, timeout: float = 5.0
) -> None:
    """Stop processes that each lead a process group of their own: ``first`` to every group
    at once, then SIGKILL to the groups still there after ``timeout`` seconds, or at once when
    the wait is interrupted (a second Ctrl-C), which then propagates with nothing left behind.
    """
    alive = [p for p in processes if p.poll() is None]
    _signal_groups(alive, first)
    deadline = time.monotonic() + timeout
    try:
        for process in alive:
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        left = [p for p in alive if p.poll() is None]
        _signal_groups(left, signal.SIGKILL)
        for process in left:
            process.wait()


def _signal_groups(processes: Iterable[subprocess.Popen], signum: int) -> None:
    for process in processes:
        with suppress(ProcessLookupError):  # ended since it was looked at
            os.killpg(process.pid, signum)
