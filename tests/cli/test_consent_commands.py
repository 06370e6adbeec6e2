"""`ehrgate break-glass`, `ehrgate review` and `ehrgate study` against a live gateway
(uvicorn on loopback), as users run them: subprocesses with key files."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from envelope import IdentityKeys, write_key_file
from tests.cli.live_cli import PDF, Run, fails, upload_one
from tests.client.live import Cast

EMERGENCY = "emergency@general"


@pytest.fixture(scope="module")
def hospital(cast: Cast) -> dict[str, IdentityKeys]:
    actors = {
        "emergency": IdentityKeys.generate(EMERGENCY, "system"),
        "er-doctor": IdentityKeys.generate("dr-er@general", "clinician"),
        "study-a": IdentityKeys.generate("study-a", "study"),
    }
    with cast.client(cast.admin) as admin:
        for name, keys in actors.items():
            admin.enroll(keys.public())
            write_key_file(cast.key_file(name), keys)
    return actors


def test_break_glass_opened_and_reviewed_on_the_command_line(
    ehrgate: Run, cast: Cast, hospital: dict[str, IdentityKeys]
) -> None:
    opted = ehrgate(
        "break-glass", "opt-in", "--emergency", EMERGENCY, "--categories", "lab-results",
        "--max-minutes", "60", "--until", "+7d", who="patient",
    )  # fmt: skip
    assert opted.returncode == 0, opted.stderr
    base = ("break-glass", "open", cast.pseudonym, "--emergency", EMERGENCY,
            "--details", "found unconscious")  # fmt: skip
    fails(ehrgate(*base, "--reason", "curiosity", who="er-doctor"), 2, "curiosity")
    fails(
        ehrgate(*base, "--reason", "unconscious-patient", "--minutes", "90", who="er-doctor"),
        2,
        "at most 60 minutes",
    )
    fails(ehrgate(*base, "--reason", "unconscious-patient", who="doctor"), 1, "not of hospital")
    opened = ehrgate.json(*base, "--reason", "unconscious-patient", who="er-doctor")
    session_id = opened["session"]["session_id"]
    assert opened["session"]["active"] is True

    fails(ehrgate("review", "list", who="er-doctor"), 1, "auditor or admin")
    queue = ehrgate.json("review", "list", who="auditor")
    assert [s["session_id"] for s in queue["sessions"]] == [session_id]
    accepted = ehrgate.json("review", "accept", session_id, "--note", "cardiac arrest",
                            who="auditor")  # fmt: skip
    assert accepted["session"]["verdict"] == "accepted"
    assert ehrgate("review", "list", who="auditor").stdout.strip() == "nothing to review"
    fails(ehrgate("review", "flag", session_id, "--note", "again", who="auditor"), 2,
          "already accepted")  # fmt: skip


def test_an_anonymised_study_export_on_the_command_line(
    ehrgate: Run, cast: Cast, hospital: dict[str, IdentityKeys], tmp_path: Path
) -> None:
    until = datetime.now(UTC) + timedelta(days=1)
    with cast.client(cast.patient) as patient:
        patient.grant(cast.doctor.id, rights=["read", "share"], categories=["lab-results"],
                      not_after=until, study_id="study-a", anonymise=True)  # fmt: skip
        patient.share_key(cast.doctor.id)
    record_id = upload_one(ehrgate, cast, tmp_path)
    exported = ehrgate.json("study", "export", record_id, who="doctor")
    assert exported["export"]["anonymised"] is True
    listed = ehrgate.json("study", "list", who="study-a")
    [export] = listed["exports"]
    assert export["study_pseudonym"] != cast.pseudonym
    fails(ehrgate("study", "list", who="doctor"), 1, "only the study itself")
    with cast.client(hospital["study-a"]) as study:
        [found] = study.study_exports()
        plaintext = study.open_study_export(found)
    reader = PdfReader(io.BytesIO(plaintext))
    assert not reader.metadata
    assert b"Lab report" in PDF
    assert reader.pages[0].extract_text().startswith("Lab report")  # page text is kept
