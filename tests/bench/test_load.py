"""`bench.load` runs end to end: every row it promises, no errors, the CPU lines.

A few seconds of load against a real `ehrgate serve` with the bridge and the web app's
requests; the test checks what the bench reports and that every operation succeeded (wrong
bytes, a failed check or an HTTP error would be counted as errors), never how fast.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench._load_profile import summarise, thread_kind

ROOT = Path(__file__).resolve().parents[2]
ROWS = ("upload", "list", "fetch", "healthz", "iti105", "iti68", "web-list", "web-open")


@pytest.mark.slow
def test_mixed_load_reports_every_row_without_errors(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "bench.load", "--clients", "2", "--duration", "10",
        "--bridge-clients", "1", "--web-clients", "1", "--size", "4000",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
    for row in ROWS:
        match = re.search(rf"^{re.escape(row)}\s+(\d+)\s+(\d+)\s", out, re.MULTILINE)
        assert match is not None, f"no {row} row in:\n{out}"
        assert int(match[1]) > 0, f"no successful {row}:\n{out}"
        assert int(match[2]) == 0, f"{row} had errors:\n{out}"
    assert "error rate 0.00%" in out
    assert re.search(r"gateway CPU: [\d.]+ s .* [\d.]+ ms per operation", out)
    assert re.search(r"load generator CPU: [\d.]+ s .*; bridge CPU [\d.]+ s", out)
    assert re.search(r"machine: [\d.]+ of \d+ cores busy", out)


def test_profile_summary_splits_threads_and_frames(tmp_path: Path) -> None:
    recording = tmp_path / "gateway.txt"
    recording.write_text(
        "thread (0x1);Thread._bootstrap (threading.py);WorkerThread.run (anyio);"
        "sign (envelope/keys.py) 30\n"
        "thread (0x2);<module> (ehrgate/__main__.py);Runner.run (asyncio/runners.py) 10\n"
        "thread (0x3);Thread.run (threading.py);Committer._run (ledger/committer.py);"
        "do_commit (sqlalchemy) 60\n"
    )
    summary = summarise(recording, top=2)
    assert "100 running samples" in summary
    assert re.search(r"committer\s+1 threads\s+60.0%", summary)
    assert re.search(r"threadpool\s+1 threads\s+30.0%", summary)
    assert re.search(r"main/loop\s+1 threads\s+10.0%", summary)
    assert "60.0%  do_commit (sqlalchemy)" in summary
    assert thread_kind(["Thread.run (threading.py)", "other (x.py)"]) == "other"
