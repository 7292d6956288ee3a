"""The demo's progress lines: each step when it starts and when it ends, with its duration."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    """Prints ``demo: ...`` lines; keeps each step's duration for the demo's summary."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str, doing: str) -> Iterator[None]:
        say(f"{doing} ...")
        began = time.monotonic()
        yield
        self.steps[name] = round(time.monotonic() - began, 1)

    def done(self, name: str, message: str) -> None:
        say(f"{message} ({self.steps[name]:.1f} s)")

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)
