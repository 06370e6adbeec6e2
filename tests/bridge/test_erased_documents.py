"""An erased record through the bridge: ITI-68 retrieve and the DocumentReference read
answer 410 Gone with an OperationOutcome, and searches no longer list it."""

from __future__ import annotations

from tests.bridge.conftest import MRN, Http
from tests.bridge.live import LiveBridge
from tests.bridge.samples import document_reference, pdf
from tests.client.live import Cast


def test_an_erased_document_is_gone_for_retrieve_read_and_search(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    content = pdf(1500)
    created = http("system").post(
        f"{live.fhir}/DocumentReference", json=document_reference(content)
    )
    assert created.status_code == 201, created.text
    record_id = created.headers["location"].rsplit("/", 1)[1]
    doctor = http("doctor")
    assert doctor.get(f"{live.fhir}/Binary/{record_id}").content == content

    with cast.client(cast.patient) as patient:
        assert patient.erase(record_id).complete

    for path in (f"Binary/{record_id}", f"DocumentReference/{record_id}"):
        answer = doctor.get(f"{live.fhir}/{path}")
        assert answer.status_code == 410, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/fhir+json")
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        [issue] = outcome["issue"]
        assert issue["code"] == "deleted"
        assert "erased" in issue["diagnostics"]
        assert b"%PDF" not in answer.content
    found = doctor.get(f"{live.fhir}/DocumentReference", params={"patient": MRN})
    assert found.status_code == 200, found.text
    ids = [entry["resource"]["id"] for entry in found.json().get("entry", [])]
    assert record_id not in ids
