"""Bad FHIR input: each a clear OperationOutcome, never a 5xx, and nothing published."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.bridge.conftest import Http
from tests.bridge.live import LiveBridge
from tests.bridge.samples import document_reference, pdf, sha1, transaction
from tests.client.live import Cast

Doc = dict[str, Any]


def _without(path: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return change


def _attachment(doc: Doc) -> Doc:
    found: Doc = doc["content"][0]["attachment"]
    return found


def _set_data(content: bytes, *, keep_hash: bool = False) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        attachment = _attachment(doc)
        attachment["data"] = base64.b64encode(content).decode()
        attachment["size"] = len(content)
        if not keep_hash:
            attachment["hash"] = sha1(content)

    return change


CASES: dict[str, tuple[Callable[[Doc], None], int, str]] = {
    "missing masterIdentifier": (_without("masterIdentifier"), 400, "masterIdentifier"),
    "missing subject": (_without("subject"), 400, "subject"),
    "missing type": (_without("type"), 400, "type"),
    "missing data": (_without("content.0.attachment.data"), 400, "attachment.data"),
    "wrong resourceType": (lambda d: d.update(resourceType="Patient"), 400, "DocumentReference"),
    "status not current": (lambda d: d.update(status="superseded"), 400, "status"),
    "unmapped LOINC": (lambda d: d["type"]["coding"][0].update(code="1-8"), 400, "mapped to no"),
    "class code disagrees": (
        lambda d: (
            d["category"][0]["coding"][0].update(code="26436-6", system="x")
            if d["type"]["coding"][0]["code"] != "11502-2"
            else d["category"][0]["coding"][0].update(code="18748-4")
        ),
        400,
        "class code",
    ),
    "hash mismatch": (lambda d: _attachment(d).update(hash=sha1(b"other")), 400, "hash"),
    "size mismatch": (lambda d: _attachment(d).update(size=3), 400, "size"),
    "bad base64": (lambda d: _attachment(d).update(data="%%%not base64"), 400, "base64"),
    "not a PDF": (_set_data(b"MZ\x90\x00 an executable, claimed as PDF " * 10), 400, "not a PDF"),
    "oversized": (_set_data(pdf(300 * 1024)), 400, "at most"),
    "not PDF content type": (
        lambda d: _attachment(d).update(contentType="text/plain"),
        400,
        "contentType",
    ),
    "unlinked MRN": (
        lambda d: d["subject"]["identifier"].update(value="MRN-UNKNOWN"),
        422,
        "ehrgate patient link-statement",
    ),
    "foreign MRN system": (lambda d: d["subject"]["identifier"].update(system="urn:x"), 400, "MRN"),
}


def records(cast: Cast) -> int:
    with cast.client(cast.patient) as patient:
        return len(patient.records(cast.pseudonym))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_document_reference_is_refused(
    live: LiveBridge, cast: Cast, http: Http, case: str
) -> None:
    change, status, words = CASES[case]
    doc = document_reference(pdf(3000))
    change(doc)
    before = records(cast)
    answer = http("system").post(f"{live.fhir}/DocumentReference", json=doc)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert words in outcome["issue"][0]["diagnostics"]
    assert records(cast) == before


def test_malformed_json_and_wrong_content_type(live: LiveBridge, http: Http) -> None:
    client = http("system")
    answer = client.post(
        f"{live.fhir}/DocumentReference",
        content=b"{not json",
        headers={"Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"
    answer = client.post(f"{live.fhir}/DocumentReference", content=b"%PDF-1.4")
    assert answer.status_code == 415


def test_oversized_body_is_413(live: LiveBridge, http: Http) -> None:
    answer = http("system").post(
        f"{live.fhir}/DocumentReference",
        content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/fhir+json"},
    )
    assert answer.status_code == 413
    assert answer.json()["issue"][0]["code"] == "too-costly"


def test_a_bad_document_in_a_transaction_publishes_none(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    bundle = transaction([("lab-results", pdf(2000)), ("radiation-dose", pdf(2000))])
    bad = copy.deepcopy(bundle)
    bad["entry"][4]["resource"]["data"] = base64.b64encode(b"no pdf here").decode()
    before = records(cast)
    answer = http("system").post(live.fhir, json=bad)
    assert answer.status_code == 400
    assert "entry" not in answer.json()
    assert records(cast) == before
    no_list = copy.deepcopy(bundle)
    del no_list["entry"][0]
    assert http("system").post(live.fhir, json=no_list).status_code == 400
    not_transaction = {**bundle, "type": "batch"}
    assert http("system").post(live.fhir, json=not_transaction).status_code == 400
    assert records(cast) == before


def test_bad_search_parameters(live: LiveBridge, http: Http) -> None:
    doctor = http("doctor")
    bad: list[dict[str, str]] = [
        {},
        {"patient": "MRN-1001", "bogus": "1"},
        {"patient": "MRN-1001", "_count": "x"},
        {"patient": "MRN-1001", "date": "yesterday"},
    ]
    for params in bad:
        answer = doctor.get(f"{live.fhir}/DocumentReference", params=params)
        assert answer.status_code == 400, params
        assert answer.json()["resourceType"] == "OperationOutcome"
    unknown = doctor.get(f"{live.fhir}/DocumentReference/{'0' * 32}")
    assert unknown.status_code == 404
    assert doctor.get(f"{live.fhir}/Nothing").status_code == 404


def test_unlinked_patient(live: LiveBridge, cast: Cast, http: Http) -> None:
    search = http("doctor").get(f"{live.fhir}/DocumentReference", params={"patient": "NOBODY"})
    assert search.status_code == 200
    bundle = search.json()
    assert bundle["total"] == 0
    assert "link-statement" in bundle["entry"][0]["resource"]["issue"][0]["diagnostics"]
    before = records(cast)
    answer = http("system").post(live.fhir, json=transaction([("lab-results", pdf(100))], "NOBODY"))
    assert answer.status_code == 422
    assert "ehrgate bridge link add" in answer.json()["issue"][0]["diagnostics"]
    assert records(cast) == before
