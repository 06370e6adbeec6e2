"""`ehrgate demo` runs its consent act: a break-glass read reviewed, an anonymised export."""

from __future__ import annotations

from tests.cli.live_cli import run_demo


def test_demo_shows_a_break_glass_read_and_a_study_export() -> None:
    out = run_demo()
    assert "the ER doctor breaks the glass" in out
    assert "the patient is told at once: a break_glass event" in out
    assert "signed by the gateway and verified" in out
    assert "dr-er@st-mary      body      allowed break-glass read" in out
    assert ": accepted by audit-review" in out
    assert "file name 'document.pdf', uploader 'anonymised'" in out
    assert "PDF metadata: none" in out
    assert "page text is not redacted" in out
