"""Break-glass sessions and study exports in the ledger's state: found by patient and by
study, the same after the ledger is opened again from its database."""

from __future__ import annotations

from ledger import Ledger
from ledger.wire import builders as b
from tests.ledger import consent_cases as cc
from tests.ledger.conftest import World


def test_sessions_and_exports_are_found_by_patient_and_study_after_reopening(
    world: World, database_url: str
) -> None:
    w = world
    opened = cc.act(w)
    w.ledger.submit(opened)
    session_id = opened.body["session_id"]
    w.ledger.submit(b.break_glass_review(w.auditor, session_id=session_id, verdict="flagged",
                                         note="check", issued_at=w.clock()))  # fmt: skip
    export, capsule = cc.export(w)
    w.ledger.submit(export, capsule=capsule)
    key = w.ledger.signer.signing_key
    w.ledger.close()
    with Ledger.open(database_url, key, clock=w.clock) as again:
        [session] = again.consent_rows("break_glass_sessions", pseudonym=w.pseudonym)
        assert session["session_id"] == session_id
        assert session["verdict"] == "flagged"
        assert again.consent_rows("break_glass_sessions", pseudonym=w.pseudonym2) == []
        [row] = again.consent_rows("study_exports", study_id="study-x")
        assert row["export_id"] == export.body["export_id"]
        assert again.consent_rows("study_exports", study_id="study-y") == []
        assert len(again.consent_rows("break_glass_sessions")) == 1
        assert again.capsule(row["capsule_sha256"]) == capsule
