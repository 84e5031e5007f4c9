"""Long work shows what it is doing: a live line on a terminal, plain periodic lines elsewhere.

On a terminal (rich's status spinner) every update replaces the line at once. When output
is not a terminal (CI, Airflow task logs, `| tee`), a spinner prints nothing, so an update
is printed as a plain line, at most one every `every` seconds (and always the first).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    def __init__(self, console: Any, status: Any | None, every: float = 10.0):
        self.console, self.status, self.every = console, status, every
        self._last = float("-inf")

    def update(self, text: str) -> None:
        if self.status is not None:
            self.status.update(text)
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.console.print(text, markup=False, highlight=False)


@contextmanager
def progress(console: Any, text: str, every: float = 10.0) -> Iterator[Progress]:
    """`with progress(console, "step …") as p: ... p.update("step: detail …")`."""
    if console.is_terminal:
        with console.status(text) as status:
            yield Progress(console, status, every)
    else:
        p = Progress(console, None, every)
        p.update(text)
        yield p
