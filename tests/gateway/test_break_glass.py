"""Break-glass through the gateway: opt-in, the act, break-glass reads, the end, review.

Each test runs an embedded gateway (SQLite, local blobs) with a hand-driven clock; the
patient's notification is checked on the event hub with a recording sink."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI

from ehrgate.emergency import EmergencyKeyService
from ehrgate.pdf import text_pdf
from envelope import IdentityKeys, PatientKeys, b64decode, open_body, open_capsule
from gateway.emergency import BREAK_GLASS_PREFIX
from ledger.wire import builders
from ledger.wire.emergency import REASONS
from tests.gateway.consent_world import (
    EMERGENCY,
    RecordingSink,
    audit_events,
    break_glass,
    opt_in,
)
from tests.gateway.helpers import World, tx_json

LAB_PDF = text_pdf(["potassium 4.1 mmol/L"], title="lab report")
DOSE_PDF = text_pdf(["dose 2 Gy"], title="dose report")


class Hospital:
    def __init__(self, world: World) -> None:
        self.emergency = world.enroll(EMERGENCY, "system")
        self.clinician = world.enroll("dr-er@general", "clinician")
        self.outsider = world.enroll("dr-er@elsewhere", "clinician")
        self.lab_system = world.enroll("lab@general", "system")
        self.auditor = world.enroll("audit-1", "auditor")
        self.uploader = world.enroll("aria-export", "system")
        self.patient = world.register_patient()
        world.grant(self.patient, self.uploader, ["write"], "all")
        self.lab = world.ingest_pdf(self.uploader, self.patient, "lab-results", LAB_PDF)
        self.dose = world.ingest_pdf(self.uploader, self.patient, "radiation-dose", DOSE_PDF)


@pytest.fixture
def sink(app: FastAPI) -> RecordingSink:
    recording = RecordingSink()
    app.state.gateway.events.subscribe(recording)
    return recording


@pytest.fixture
def hospital(world: World) -> Hospital:
    return Hospital(world)


def _read(world: World, who: IdentityKeys, record: dict[str, str], part: str) -> int:
    response = world.client.get(
        f"/v1/records/{record['record_id']}/{part}", headers=world.headers(who)
    )
    status: int = response.status_code
    return status


def _sessions(world: World, who: IdentityKeys, status: str = "pending") -> list[dict[str, str]]:
    response = world.client.get(
        "/v1/break-glass", params={"status": status}, headers=world.headers(who)
    )
    assert response.status_code == 200, response.text
    sessions: list[dict[str, str]] = response.json()["sessions"]
    return sessions


def _open_as_clinician(world: World, h: Hospital, record: dict[str, str]) -> bytes:
    """The clinician's client: capsule and body from the gateway, the data key from the
    hospital's emergency key service (which reads as the emergency identity)."""
    pseudonym = h.patient.pseudonym
    service = EmergencyKeyService(h.emergency)
    share = world.client.get(
        f"/v1/patients/{pseudonym}/key-share", headers=world.headers(h.emergency)
    )
    assert share.status_code == 200, share.text
    seeds = service.seeds(b64decode(share.json()["sealed_key"]), pseudonym)
    capsule = world.client.get(
        f"/v1/records/{record['record_id']}/capsule", headers=world.headers(h.emergency)
    )
    assert capsule.status_code == 200, capsule.text
    rewrapped = service.unlock(
        seeds=seeds,
        pseudonym=pseudonym,
        capsule=capsule.content,
        category=record["category"],
        created_at=record["created_at"],
        clinician_id=h.clinician.id,
        clinician_key=h.clinician.public().encryption_key,
    )
    body = world.client.get(
        f"/v1/records/{record['record_id']}/body", headers=world.headers(h.clinician)
    )
    assert body.status_code == 200, body.text
    opened = open_capsule(rewrapped, h.clinician.encryption_key, h.clinician.id)
    return b"".join(open_body([body.content], opened))


def test_with_opt_in_break_glass_reads_are_audited_notified_queued_and_end_on_time(
    world: World, hospital: Hospital, sink: RecordingSink
) -> None:
    h = hospital
    opt_in(world, h.patient, h.emergency, categories=["lab-results"], max_minutes=60)
    # Before the act, neither the clinician nor the emergency identity reads anything.
    assert _read(world, h.clinician, h.lab, "body") == 403
    share = world.client.get(
        f"/v1/patients/{h.patient.pseudonym}/key-share", headers=world.headers(h.emergency)
    )
    assert share.status_code == 403

    opened = break_glass(world, h.clinician, h.patient, minutes=30)
    assert opened.status_code == 201, opened.text
    session = opened.json()["session"]
    assert session["active"]
    assert session["categories"] == ["lab-results"]
    assert session["invoker"] == h.clinician.id
    assert session["verdict"] is None

    # The patient hears of it at once: ids and categories only.
    [event] = sink.of_kind("break_glass")
    assert event.pseudonym == h.patient.pseudonym
    assert event.details["outcome"] == "opened"
    assert event.details["session_id"] == session["session_id"]

    # The records of the policy's categories only: listing, metadata, capsule, body.
    listing = world.client.get(
        f"/v1/patients/{h.patient.pseudonym}/records", headers=world.headers(h.clinician)
    )
    assert listing.status_code == 200, listing.text
    assert [r["record_id"] for r in listing.json()["records"]] == [h.lab["record_id"]]
    assert _read(world, h.clinician, h.dose, "body") == 403
    assert _open_as_clinician(world, h, h.lab) == LAB_PDF
    # The emergency identity reads capsules, never bodies.
    assert _read(world, h.emergency, h.lab, "body") == 403

    # Each read the session allowed is audited as a break-glass read naming the session.
    allowed = [
        e for e in audit_events(world, h.patient)
        if e["actor"] in (h.clinician.id, h.emergency.id) and e["decision"] == "allowed"
    ]  # fmt: skip
    assert {e["action"] for e in allowed} >= {"list", "capsule", "body", "key_share"}
    for entry in allowed:
        assert entry["reason"].startswith(BREAK_GLASS_PREFIX + session["session_id"])

    # It is queued for review; an auditor accepts it, once.
    assert [s["session_id"] for s in _sessions(world, h.auditor)] == [session["session_id"]]
    review = builders.break_glass_review(
        h.auditor, session_id=session["session_id"], verdict="accepted",
        note="documented cardiac arrest", issued_at=world.clock(),
    )  # fmt: skip
    reviewed = world.client.post(
        f"/v1/break-glass/{session['session_id']}/review",
        json=tx_json(review),
        headers=world.headers(h.auditor),
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["session"]["verdict"] == "accepted"
    assert _sessions(world, h.auditor) == []
    assert len(_sessions(world, h.auditor, "all")) == 1
    again = builders.break_glass_review(
        h.auditor, session_id=session["session_id"], verdict="flagged", note="second look",
        issued_at=world.clock(),
    )  # fmt: skip
    twice = world.client.post(
        f"/v1/break-glass/{session['session_id']}/review",
        json=tx_json(again),
        headers=world.headers(h.auditor),
    )
    assert twice.status_code == 409
    assert twice.json()["code"] == "already-reviewed"

    # It ends by itself: 30 minutes later nothing is allowed any more.
    world.clock.advance(timedelta(minutes=30, seconds=1))
    world.tokens.clear()
    assert _read(world, h.clinician, h.lab, "body") == 403
    assert _read(world, h.clinician, h.lab, "capsule") == 403
    late_share = world.client.get(
        f"/v1/patients/{h.patient.pseudonym}/key-share", headers=world.headers(h.emergency)
    )
    assert late_share.status_code == 403
    status = world.client.get(
        f"/v1/break-glass/{session['session_id']}", headers=world.headers(h.patient.identity)
    )
    assert status.status_code == 200
    assert status.json()["active"] is False


def test_without_opt_in_the_act_is_recorded_and_refused(
    world: World, hospital: Hospital, sink: RecordingSink
) -> None:
    h = hospital
    refused = break_glass(world, h.clinician, h.patient)
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["code"] == "not-opted-in"
    assert "did not opt in" in problem["detail"]
    # Recorded on the ledger (the patient's audit shows it) and the patient is told.
    [entry] = [e for e in audit_events(world, h.patient) if e["action"] == "break_glass"]
    assert entry["actor"] == h.clinician.id
    assert entry["decision"] == "denied"
    assert "did not opt in" in entry["reason"]
    [event] = sink.of_kind("break_glass")
    assert event.details["outcome"] == "refused"
    # Nothing was opened: no session, no read.
    assert _sessions(world, h.auditor, "all") == []
    assert _read(world, h.clinician, h.lab, "body") == 403


def test_only_clinicians_of_the_hospital_may_invoke_it(world: World, hospital: Hospital) -> None:
    h = hospital
    opt_in(world, h.patient, h.emergency, categories=["lab-results"])
    by_system = break_glass(world, h.lab_system, h.patient)
    assert by_system.status_code == 403
    assert by_system.json()["code"] == "wrong-role"
    by_outsider = break_glass(world, h.outsider, h.patient)
    assert by_outsider.status_code == 403
    assert by_outsider.json()["code"] == "not-of-hospital"
    by_auditor = break_glass(world, h.auditor, h.patient)
    assert by_auditor.status_code == 403
    assert _sessions(world, h.auditor, "all") == []
    assert _read(world, h.outsider, h.lab, "body") == 403
    actors = {e["actor"] for e in audit_events(world, h.patient) if e["action"] == "break_glass"}
    assert actors == {h.lab_system.id, h.outsider.id, h.auditor.id}


def test_past_the_policys_maximum_or_with_an_unknown_reason_nothing_opens(
    world: World, hospital: Hospital
) -> None:
    h = hospital
    opt_in(world, h.patient, h.emergency, categories=["lab-results"], max_minutes=60)
    too_long = break_glass(world, h.clinician, h.patient, minutes=61)
    assert too_long.status_code == 422
    assert too_long.json()["code"] == "beyond-policy"
    assert "at most 60 minutes" in too_long.json()["detail"]
    odd_reason = break_glass(world, h.clinician, h.patient, reason="curiosity")
    assert odd_reason.status_code == 422
    assert all(reason in odd_reason.json()["detail"] for reason in REASONS)
    assert _sessions(world, h.auditor, "all") == []
    assert _read(world, h.clinician, h.lab, "body") == 403


def test_the_review_queue_is_for_auditors_and_admins(world: World, hospital: Hospital) -> None:
    h = hospital
    opt_in(world, h.patient, h.emergency, categories=["lab-results"])
    session_id = break_glass(world, h.clinician, h.patient).json()["session"]["session_id"]
    queue = world.client.get("/v1/break-glass", headers=world.headers(h.clinician))
    assert queue.status_code == 403
    review = builders.break_glass_review(
        h.clinician, session_id=session_id, verdict="accepted", note="fine",
        issued_at=world.clock(),
    )  # fmt: skip
    self_review = world.client.post(
        f"/v1/break-glass/{session_id}/review",
        json=tx_json(review),
        headers=world.headers(h.clinician),
    )
    assert self_review.status_code == 403
    assert [s["verdict"] for s in _sessions(world, world.admin)] == [None]
    stranger = world.client.get(f"/v1/break-glass/{session_id}", headers=world.headers(h.outsider))
    assert stranger.status_code == 403


def test_a_patient_key_share_to_the_emergency_identity_needs_a_policy(
    world: World, hospital: Hospital
) -> None:
    h = hospital
    patient: PatientKeys = h.patient
    from envelope import seal_scoped_share

    month = world.clock().strftime("%Y-%m")
    sealed = seal_scoped_share(
        patient.patient_key, pseudonym=patient.pseudonym, grantee_id=h.emergency.id,
        grantee_key=h.emergency.public().encryption_key, scope=[("lab-results", month)],
    )  # fmt: skip
    share = builders.key_share(
        patient.identity, pseudonym=patient.pseudonym, grantee=h.emergency.id,
        sealed_key=sealed, scope=[("lab-results", month)], issued_at=world.clock(),
    )  # fmt: skip
    response = world.client.post(
        "/v1/key-shares", json=tx_json(share), headers=world.headers(patient.identity)
    )
    assert response.status_code == 422
    assert response.json()["code"] == "share-outside-grant"


def test_withdrawing_the_opt_in_ends_open_sessions(world: World, hospital: Hospital) -> None:
    h = hospital
    opt_in(world, h.patient, h.emergency, categories=["lab-results"])
    assert break_glass(world, h.clinician, h.patient, minutes=60).status_code == 201
    assert _read(world, h.clinician, h.lab, "body") == 200
    now = world.clock()
    withdrawn = builders.break_glass_policy(
        h.patient.identity, pseudonym=h.patient.pseudonym, emergency_identity=h.emergency.id,
        categories=["lab-results"], roles=["clinician"], max_minutes=60,
        not_before=now - timedelta(hours=1), not_after=now, issued_at=now,
    )  # fmt: skip
    response = world.client.post(
        f"/v1/patients/{h.patient.pseudonym}/break-glass-policy",
        json=tx_json(withdrawn),
        headers=world.headers(h.patient.identity),
    )
    assert response.status_code == 201, response.text
    assert _read(world, h.clinician, h.lab, "body") == 403
    again = break_glass(world, h.clinician, h.patient)
    assert again.status_code == 403
    assert again.json()["code"] == "not-opted-in"
