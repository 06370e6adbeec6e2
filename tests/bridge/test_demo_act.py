"""`ehrgate demo` runs its bridge act: an MDM^T02 in over MLLP, ITI-67 and ITI-68 out."""

from __future__ import annotations

from tests.cli.live_cli import run_demo


def test_demo_bridge_act_publishes_over_mllp_and_retrieves_through_mhd() -> None:
    out = run_demo()
    assert "ACK AA: published as record" in out
    assert "ITI-67: " in out
    assert "identical to the PDF in OBX-5" in out
    assert "dr-house     body" in out
