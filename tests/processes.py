"""Helpers for the servers tests start as child processes in their own process group."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress
from pathlib import Path

LOG_TAIL = 3000
"""Characters of a server's log shown when it fails."""


def kill_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL *process*'s group at once, as a crash would, and reap it (if still running)."""
    if process is None or process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def log_tail(path: Path) -> str:
    """The end of the log file at *path*, or a note that there is none."""
    try:
        return path.read_text(errors="replace")[-LOG_TAIL:]
    except OSError:
        return "(no log)"
