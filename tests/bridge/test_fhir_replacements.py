"""A new version of a document (FHIR relatesTo replaces, HL7 MDM^T10): the replaced one is
served as superseded and the new one names it; a replacement of a document this bridge did
not publish, of another patient's document, or of one already replaced is refused (400,
an OperationOutcome saying why)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ehrgate.links import make_link_statement
from tests.bridge.conftest import MRN, Http
from tests.bridge.live import LiveBridge
from tests.bridge.samples import document_reference, pdf
from tests.client.live import Cast, new_patient


def replacing(target: dict[str, Any], **options: Any) -> dict[str, Any]:
    resource = document_reference(pdf(1500), **options)
    resource["relatesTo"] = [{"code": "replaces", "target": target}]
    return resource


def publish(http: Http, live: LiveBridge, resource: dict[str, Any]) -> str:
    created = http("system").post(f"{live.fhir}/DocumentReference", json=resource)
    assert created.status_code == 201, created.text
    return str(created.headers["location"].rsplit("/", 1)[1])


def refused(http: Http, live: LiveBridge, resource: dict[str, Any], words: str) -> None:
    answer = http("system").post(f"{live.fhir}/DocumentReference", json=resource)
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert words in answer.text


def test_a_replacement_supersedes_the_document(http: Http, live: LiveBridge) -> None:
    first = document_reference(pdf(1500))
    first_id = publish(http, live, first)
    second_id = publish(http, live, replacing({"reference": f"DocumentReference/{first_id}"}))
    doctor = http("doctor")
    old = doctor.get(f"{live.fhir}/DocumentReference/{first_id}").json()
    new = doctor.get(f"{live.fhir}/DocumentReference/{second_id}").json()
    assert old["status"] == "superseded"
    assert "relatesTo" not in old
    assert new["status"] == "current"
    assert new["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{first_id}"}}
    ]
    current = doctor.get(
        f"{live.fhir}/DocumentReference", params={"patient": MRN, "status": "current"}
    ).json()
    ids = {e["resource"]["id"] for e in current.get("entry", [])}
    assert second_id in ids
    assert first_id not in ids
    superseded = doctor.get(
        f"{live.fhir}/DocumentReference", params={"patient": MRN, "status": "superseded"}
    ).json()
    assert first_id in {e["resource"]["id"] for e in superseded["entry"]}

    # The replaced document is named by its masterIdentifier as well; a retry is idempotent.
    third = replacing({"identifier": new["masterIdentifier"]})
    third_id = publish(http, live, third)
    again = http("system").post(f"{live.fhir}/DocumentReference", json=third)
    assert again.status_code == 200
    assert again.headers["location"].endswith(third_id)
    # ... but a document is replaced once: a second, different replacement is refused.
    refused(
        http, live, replacing({"reference": f"DocumentReference/{second_id}"}),
        "already replaced",
    )  # fmt: skip


def test_replacements_that_cannot_hold_are_refused(
    http: Http, live: LiveBridge, cast: Cast
) -> None:
    refused(http, live, replacing({"reference": "DocumentReference/0123abcd"}), "not published")
    refused(http, live, replacing({"reference": "Patient/1"}), "must name a DocumentReference")
    refused(http, live, replacing({"display": "the old one"}), "needs a reference")
    appended = document_reference(pdf(1500))
    appended["relatesTo"] = [{"code": "appends", "target": {"reference": "DocumentReference/x"}}]
    refused(http, live, appended, "'replaces'")

    # Another patient's document cannot be replaced in this patient's record.
    other = new_patient("Other Person")
    with cast.client(other) as patient:
        patient.register_patient()
        patient.grant(
            cast.system.id, rights=["write"], categories="all",
            not_after=datetime.now(UTC) + timedelta(days=1),
        )  # fmt: skip
    statement = make_link_statement(other, hospital="st-elsewhere", mrn="MRN-2002")
    live.service.links.add(statement.to_json(), live.service.identities.client("aria-export"))
    theirs = publish(http, live, document_reference(pdf(1500), mrn="MRN-2002"))
    refused(http, live, replacing({"reference": f"DocumentReference/{theirs}"}), "another patient")
