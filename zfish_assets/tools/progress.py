"""Progress of long command-line work: a bar on a terminal, a plain line every so often elsewhere.

`zfish generate`, `zfish upload` and `zfish deploy` can run for minutes (10^5-10^6 files). On a
terminal the bar redraws in place at most ten times a second; in a CI log or a file, where a
redrawn line would be noise, a line is written every `ZFISH_PROGRESS_INTERVAL_S` seconds
(default 10) and once at the end, so a log shows the work moving and what it came to.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from zfish_assets import settings

BAR_WIDTH = 30
REDRAW_S = 0.1


def log_interval() -> float:
    """`ZFISH_PROGRESS_INTERVAL_S`: seconds between progress lines when not on a terminal."""
    return settings.PROGRESS_INTERVAL_S.get()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Counts done units of `total` and shows them on `stream` (standard error by default)."""

    def __init__(self, what: str, total: int, unit: str, stream: TextIO | None = None,
                 interval_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.unit = what, max(total, 0), unit
        self.stream = stream or sys.stderr
        self.on_terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = REDRAW_S if self.on_terminal else (log_interval() if interval_s is None else interval_s)
        self.clock = clock
        self.done = 0
        self.began = self.last_shown = clock()
        self.closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, units: int = 1) -> None:
        self.done += units
        if self.clock() - self.last_shown >= self.interval:
            self._show()

    def _rate(self) -> float:
        elapsed = self.clock() - self.began
        return self.done / elapsed if elapsed > 0 else 0.0

    def _status(self) -> str:
        rate = self._rate()
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        eta = f", {_duration((self.total - self.done) / rate)} left" if rate and self.total > self.done else ""
        return f"{self.done:,}/{self.total:,} {self.unit}{share}, {rate:,.0f} {self.unit}/s{eta}"

    def _show(self) -> None:
        self.last_shown = self.clock()
        if self.on_terminal:
            filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stream.write(f"\r{self.what} [{bar}] {self._status()}\033[K")
        else:
            self.stream.write(f"{self.what}: {self._status()}\n")
        self.stream.flush()

    def close(self) -> None:
        """The final state: the bar full (then a new line), or a last line saying what was done and how long it took."""
        if self.closed:
            return
        self.closed = True
        if self.on_terminal:
            self._show()
            self.stream.write("\n")
        else:
            self.stream.write(f"{self.what}: {self.done:,} {self.unit} in {_duration(self.clock() - self.began)}\n")
        self.stream.flush()
