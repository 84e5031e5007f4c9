"""Peak resident memory of this process and everything it starts (dbt runs as a subprocess)."""

from __future__ import annotations

import threading

import psutil


class PeakRss:
    """Samples the RSS of the process tree every `interval` seconds; `peak` is the largest sum seen.

    Sampling can miss a spike shorter than the interval; `resource.getrusage` is exact
    but only per process, so the report gives both.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # the child just exited
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())
