"""Thread handling the fault-test loads share: daemon workers, a stop flag, waiting on progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Self


class Workers:
    """Daemon threads running `runs` until `stop()`; `_lock` guards the load's tallies.

    A load notifies `_lock` when it counts progress, so that `_wait_until` wakes at once.
    """

    def __init__(self, runs: Iterable[Callable[[], None]], what: str) -> None:
        self._what = what
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=run, daemon=True) for run in runs]

    def start(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), f"{self._what} hangs"

    def _wait_until(
        self, done: Callable[[], bool], timeout: float, failure: Callable[[], str]
    ) -> None:
        """Wait, holding `_lock`, until `done()`; after `timeout` seconds raise with `failure()`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(failure())
                self._lock.wait(min(left, 0.5))
