"""Child processes for the fault tests: start one, read what it acknowledges, kill it -9.

A child writes one line per acknowledged operation to its stdout, flushed at once; a reader
thread in the parent collects them, so that a line written just before the kill is still
read after it (the pipe keeps it). Everything the parent read is what the child
acknowledged before it died.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ehrgate(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ehrgate ARGS`, run to its end from the repository's root."""
    return subprocess.run(
        [sys.executable, "-m", "ehrgate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


class Child:
    """A Python child process (``python -m MODULE ARGS``) whose stdout lines are collected."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stderr_path: Path | None = None,
    ) -> None:
        environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self._stderr = stderr_path.open("ab") if stderr_path is not None else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=self._stderr if self._stderr is not None else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def wait_for_line(self, wanted: str, timeout: float) -> None:
        """Wait until the child printed *wanted*; fail if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while wanted not in self._lines:
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f"the child exited with {self.process.returncode} before {wanted!r}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the child did not print {wanted!r} in {timeout:.0f}s")
                self._changed.wait(min(left, 0.5))

    def wait_for_count(self, count: int, timeout: float) -> None:
        """Wait until the child printed at least *count* lines."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._lines) < count:
                if not self._reader.is_alive():
                    raise RuntimeError(f"the child exited with {self.process.poll()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the child printed fewer than {count} lines")
                self._changed.wait(min(left, 0.5))

    def kill(self) -> list[str]:
        """SIGKILL the child's process group; return every line it printed."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
        return self.lines()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.kill()
