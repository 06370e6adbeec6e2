"""What /proc says about a process: its CPU time so far."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process *pid*, all its threads, so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of proc(5); the split starts after field 2.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
