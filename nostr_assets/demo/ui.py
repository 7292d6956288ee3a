"""Serving the Dagster UI on the demo's instance, and stopping it (and with it the demo) on
Ctrl-C, SIGTERM or a closed terminal, leaving no process behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nostr_assets.demo.relays import stop_process_groups

DEFAULT_PORT = 3000
# How long `dagster dev` may take to stop its webserver, daemon and code server after Ctrl-C
# before it is killed (it takes 2-5 s here).
UI_STOP_TIMEOUT = 30.0


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwind like Ctrl-C, so every `finally` stops what it started."""


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP (a closed terminal) unwind the demo as Ctrl-C does."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)


def serve_ui(project_root: Path, env: Mapping[str, str], port: int) -> int:
    """Run `dagster dev` until it exits or the demo is stopped; returns its exit code.

    It runs in a process group of its own, so the demo decides when it stops: on Ctrl-C (or
    SIGTERM) the group gets SIGINT, as a terminal would send it, and SIGKILL if it is still
    there after UI_STOP_TIMEOUT seconds or at a second Ctrl-C; the relays stop after that.
    """
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "-w",
        str(project_root / "workspace.yaml"),
        "-p",
        str(port),
    ]
    ui = subprocess.Popen(command, cwd=project_root, env=dict(env), start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while ui.poll() is None and not port_in_use(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        if ui.poll() is None:
            print(f"demo: serving the Dagster UI at http://127.0.0.1:{port}", flush=True)
            print("demo: press Ctrl-C to stop the UI and the demo relays", flush=True)
        return ui.wait()
    finally:
        if ui.poll() is None:
            print("demo: stopping the Dagster UI ...", flush=True)
        stop_process_groups([ui], signal.SIGINT, UI_STOP_TIMEOUT)
