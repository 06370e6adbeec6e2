"""Access requests end to end over the HTTP API: a clinician asks, the patient hears of it,
lists what is pending, and approves with a grant or declines; each answer is a patient-signed
`answer_request` on the ledger, given once, by the patient only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from envelope import IdentityKeys, PatientKeys
from gateway.events import GatewayEvent
from ledger.wire import builders
from tests.gateway.helpers import World, tx_json


class Recorder:
    """An event sink that keeps what it is given (the seam the webhook sink uses)."""

    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def publish(self, event: GatewayEvent) -> None:
        self.events.append(event)


def ask(world: World, dr: IdentityKeys, patient: PatientKeys, **period: Any) -> Any:
    tx = builders.access_request(
        dr, pseudonym=patient.pseudonym, rights=["read"], categories=["lab-results"],
        reason="second opinion on the biopsy", issued_at=world.clock(), **period,
    )  # fmt: skip
    return world.client.post("/v1/access-requests", json=tx_json(tx), headers=world.headers(dr))


def answer(
    world: World,
    who: IdentityKeys,
    pseudonym: str,
    request_id: str,
    decision: str,
    permission_id: str | None = None,
    path_id: str | None = None,
) -> Any:
    tx = builders.answer_request(
        who, pseudonym=pseudonym, request_id=request_id, decision=decision,
        permission_id=permission_id, issued_at=world.clock(),
    )  # fmt: skip
    return world.client.post(
        f"/v1/access-requests/{path_id or request_id}/answer",
        json=tx_json(tx),
        headers=world.headers(who),
    )


def requests_of(world: World, patient: PatientKeys, **params: str) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/patients/{patient.pseudonym}/access-requests",
        params=params,
        headers=world.headers(patient.identity),
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["access_requests"]
    return found


def test_a_request_with_a_period_is_told_to_the_patient_and_listed_pending(
    world: World, app: Any
) -> None:
    recorder = Recorder()
    app.state.gateway.events.subscribe(recorder)
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    start, end = world.clock(), world.clock() + timedelta(days=7)
    response = ask(world, dr, patient, not_before=start, not_after=end)
    assert response.status_code == 201, response.text
    request = response.json()["access_request"]
    assert request["decision"] is None
    assert request["not_before"] == "2030-01-01T12:00:00.000000Z"
    assert request["not_after"] == "2030-01-08T12:00:00.000000Z"
    (event,) = recorder.events
    assert event.kind == "access_request"
    assert event.event_id == response.json()["receipt"]["tx_hash"]
    assert event.details["request_id"] == request["request_id"]
    assert event.details["requester"] == dr.id
    assert "reason" not in event.details
    assert [r["request_id"] for r in requests_of(world, patient, pending="true")] == [
        request["request_id"]
    ]


def test_approve_with_the_grant_then_it_is_no_longer_pending(world: World) -> None:
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    request_id = ask(world, dr, patient).json()["access_request"]["request_id"]
    permission_id = world.grant(patient, dr, ["read"], ["lab-results"])
    response = answer(
        world, patient.identity, patient.pseudonym, request_id, "approved", permission_id
    )
    assert response.status_code == 200, response.text
    answered = response.json()["access_request"]
    assert answered["decision"] == "approved"
    assert answered["permission_id"] == permission_id
    assert requests_of(world, patient, pending="true") == []
    assert requests_of(world, patient)[0]["decision"] == "approved"


def test_decline_is_signed_by_the_patient_and_on_the_ledger(world: World) -> None:
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    request_id = ask(world, dr, patient).json()["access_request"]["request_id"]
    response = answer(world, patient.identity, patient.pseudonym, request_id, "declined")
    assert response.status_code == 200, response.text
    index = response.json()["receipt"]["index"]
    page = world.client.get(
        "/v1/ledger/entries", params={"start": index, "limit": 1},
        headers=world.headers(world.admin),
    ).json()  # fmt: skip
    entry = page["entries"][0]["tx"]
    assert entry["type"] == "answer_request"
    assert entry["signer"] == patient.identity.id
    assert entry["body"]["decision"] == "declined"
    assert requests_of(world, patient)[0]["decision"] == "declined"


def test_a_request_is_answered_once(world: World) -> None:
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    request_id = ask(world, dr, patient).json()["access_request"]["request_id"]
    first = answer(world, patient.identity, patient.pseudonym, request_id, "declined")
    assert first.status_code == 200
    permission_id = world.grant(patient, dr, ["read"], ["lab-results"])
    again = answer(
        world, patient.identity, patient.pseudonym, request_id, "approved", permission_id
    )
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "already-answered"
    assert again.headers["content-type"] == "application/problem+json"
    assert requests_of(world, patient)[0]["decision"] == "declined"


def test_only_the_patient_answers(world: World) -> None:
    patient = world.register_patient("Jane Doe")
    other = world.register_patient("John Roe")
    dr = world.enroll("dr-who", "clinician")
    request_id = ask(world, dr, patient).json()["access_request"]["request_id"]
    # another patient, signing for the first patient's pseudonym
    by_other = answer(world, other.identity, patient.pseudonym, request_id, "declined")
    assert by_other.status_code == 403, by_other.text
    assert by_other.json()["code"] == "not-owner"
    # another patient, on its own pseudonym: the request is not there
    elsewhere = answer(world, other.identity, other.pseudonym, request_id, "declined")
    assert elsewhere.status_code == 422, elsewhere.text
    assert elsewhere.json()["code"] == "unknown-request"
    # the requester itself
    by_requester = answer(world, dr, patient.pseudonym, request_id, "declined")
    assert by_requester.status_code == 403, by_requester.text
    # a transaction signed by someone other than the caller
    tx = builders.answer_request(
        patient.identity, pseudonym=patient.pseudonym, request_id=request_id,
        decision="declined", issued_at=world.clock(),
    )  # fmt: skip
    relayed = world.client.post(
        f"/v1/access-requests/{request_id}/answer", json=tx_json(tx), headers=world.headers(dr)
    )
    assert relayed.status_code == 403, relayed.text
    assert requests_of(world, patient)[0]["decision"] is None
    # each refusal is audited on the patient's log
    audit = world.client.get(
        f"/v1/patients/{patient.pseudonym}/audit", headers=world.headers(patient.identity)
    ).json()["events"]
    refused = [e for e in audit if e["action"] == "answer_request"]
    assert {e["actor"] for e in refused} >= {other.identity.id, dr.id}
    assert all(e["decision"] == "denied" for e in refused)


def test_an_approval_must_name_a_live_grant_to_the_requester(world: World) -> None:
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    someone = world.enroll("dr-else", "clinician")
    request_id = ask(world, dr, patient).json()["access_request"]["request_id"]
    to_someone = world.grant(patient, someone, ["read"], ["lab-results"])
    wrong = answer(world, patient.identity, patient.pseudonym, request_id, "approved", to_someone)
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "grant-does-not-match"
    bare = answer(world, patient.identity, patient.pseudonym, request_id, "approved")
    assert bare.json()["code"] == "approval-needs-grant"
    revoked = world.grant(patient, dr, ["read"], ["lab-results"])
    world.revoke(patient, revoked)
    late = answer(world, patient.identity, patient.pseudonym, request_id, "approved", revoked)
    assert late.json()["code"] == "grant-does-not-match"
    mismatch = answer(
        world, patient.identity, patient.pseudonym, request_id, "declined", path_id="a" * 32
    )
    assert mismatch.status_code == 422
    assert "another request" in mismatch.json()["detail"]
    assert requests_of(world, patient, pending="true")[0]["request_id"] == request_id


def test_a_request_needs_a_whole_period(world: World) -> None:
    patient = world.register_patient()
    dr = world.enroll("dr-who", "clinician")
    half = ask(world, dr, patient, not_after=world.clock() + timedelta(days=1))
    assert half.status_code == 422
    assert half.json()["code"] == "half-period"
    empty = ask(world, dr, patient, not_before=world.clock(), not_after=world.clock())
    assert empty.json()["code"] == "empty-interval"
    assert requests_of(world, patient) == []
