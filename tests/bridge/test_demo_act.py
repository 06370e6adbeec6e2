"""`ehrgate demo` runs its bridge act: an MDM^T02 in over MLLP, ITI-67 and ITI-68 out."""

from __future__ import annotations

import subprocess
import sys


def test_demo_bridge_act_publishes_over_mllp_and_retrieves_through_mhd() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ehrgate", "demo", "--expiry", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ACK AA: published as record" in done.stdout
    assert "ITI-67: " in done.stdout
    assert "identical to the PDF in OBX-5" in done.stdout
    assert "dr-house     body" in done.stdout
