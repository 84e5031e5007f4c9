"""Long work shows what it is doing: a live line on a terminal, plain periodic lines elsewhere.

On a terminal (rich's status spinner) every update replaces the line at once. When output
is not a terminal (CI, `| tee`), a spinner prints nothing, so an update is printed as a
plain line, at most one every `every` seconds (and always the first and any `force`d one).
The CLI shows progress on stderr, so stdout carries only results (`agora build > out.json`).

Extracts report through one channel: `track_extract` (agora.extract) opens a tracker for
the source, the HTTP base (connectors.http) reports each page fetched and each wait with
its reason (`page`, `waiting`), the extract reports the records it keeps. The tracker
shows its line on the CLI's display when one is open (`progress`), and otherwise logs it
(logger ``agora.progress``: an Airflow task's log) at the same pace. ``AGORA_PROGRESS_EVERY``
sets the pace in seconds (default 10).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

log = logging.getLogger("agora.progress")
_display: ContextVar[Progress | None] = ContextVar("agora_progress_display", default=None)
_tracker: ContextVar[ExtractTracker | None] = ContextVar("agora_extract_tracker", default=None)


def default_every() -> float:
    try:
        return max(0.0, float(os.environ.get("AGORA_PROGRESS_EVERY", "10")))
    except ValueError:
        return 10.0


class Throttle:
    """True at most once every `every` seconds (always the first time, or when forced)."""

    def __init__(self, every: float):
        self.every = every
        self._last = float("-inf")

    def due(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            return True
        return False


class Progress:
    def __init__(self, console: Any, status: Any | None, every: float | None = None):
        self.console, self.status = console, status
        self._throttle = Throttle(default_every() if every is None else every)

    def update(self, text: str, force: bool = False) -> None:
        if self.status is not None:
            self.status.update(text)
            return
        if self._throttle.due(force):
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def progress(console: Any, text: str, every: float | None = None) -> Iterator[Progress]:
    """`with progress(console, "step …") as p: ... p.update("step: detail …")`.

    While open, it is where extract trackers show their lines."""
    if console.is_terminal:
        with console.status(text) as status:
            p = Progress(console, status, every)
            token = _display.set(p)
            try:
                yield p
            finally:
                _display.reset(token)
    else:
        p = Progress(console, None, every)
        p.update(text, force=True)
        token = _display.set(p)
        try:
            yield p
        finally:
            _display.reset(token)


class ExtractTracker:
    """Pages fetched, records kept and quarantined, and the current wait of one extract."""

    def __init__(self, source: str, show: Callable[[str, bool], None]):
        self.source, self._show = source, show
        self.pages = self.records = self.quarantined = 0
        self.waited = 0.0

    def counts(self) -> str:
        text = f"{self.pages:,} pages fetched, {self.records:,} records read"
        if self.quarantined:
            text += f", {self.quarantined:,} quarantined"
        if self.waited:
            text += f", {self.waited:.1f} s spent waiting"
        return text

    def line(self) -> str:
        return f"extract {self.source}: {self.counts()}"

    def page(self) -> None:
        self.pages += 1
        self._show(self.line(), False)

    def record(self, quarantined: bool = False) -> None:
        if quarantined:
            self.quarantined += 1
        else:
            self.records += 1
        self._show(self.line(), False)

    def waiting(self, seconds: float, reason: str) -> None:
        self.waited += seconds
        self._show(f"extract {self.source}: waiting {seconds:.1f} s: {reason} ({self.counts()})", True)

    def done(self, landed: int, files: int) -> None:
        self._show(f"{self.line()}; landed {landed:,} records in {files} files", True)


@contextmanager
def track_extract(source: str) -> Iterator[ExtractTracker]:
    """Report one extract's progress on the open display, or as log lines when there is none."""
    display = _display.get()
    if display is not None:

        def show(text: str, force: bool) -> None:
            display.update(text, force)
    else:
        throttle = Throttle(default_every())

        def show(text: str, force: bool) -> None:
            if throttle.due(force):
                log.info("%s", text)

    tracker = ExtractTracker(source, show)
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


def page() -> None:
    """The HTTP base fetched one page (a successful response) for the running extract."""
    tracker = _tracker.get()
    if tracker is not None:
        tracker.page()


def waiting(seconds: float, reason: str) -> None:
    """The HTTP base is about to wait `seconds` before its next request, because of `reason`."""
    tracker = _tracker.get()
    if tracker is not None and seconds > 0:
        tracker.waiting(seconds, reason)
