"""IHE MHD end to end: fhirpy and fhirclient against a real bridge in front of a real
gateway; every FHIR response is also checked by the independent validator (conftest)."""

from __future__ import annotations

import base64
import io
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fhirclient.models.documentreference import DocumentReference as FcDocumentReference
from fhirclient.server import FHIRServer
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError

from tests.bridge.conftest import MRN, Http
from tests.bridge.live import LiveBridge
from tests.bridge.samples import MRN_SYSTEM, document_reference, pdf, transaction
from tests.client.live import Cast


def fhirpy_client(live: LiveBridge, token: str) -> SyncFHIRClient:
    return SyncFHIRClient(live.fhir, authorization=f"Bearer {token}")


def fhirclient_server(live: LiveBridge, token: str) -> FHIRServer:
    server = FHIRServer(None, base_uri=live.fhir + "/")
    server.session.headers["Authorization"] = f"Bearer {token}"
    _servers.append(server)
    return server


_servers: list[FHIRServer] = []


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    while _servers:
        _servers.pop().session.close()


def record_count(cast: Cast) -> int:
    with cast.client(cast.patient) as patient:
        return len(patient.records(cast.pseudonym))


def test_iti105_publish_with_fhirpy_search_and_retrieve_byte_identical(
    live: LiveBridge, cast: Cast
) -> None:
    content = pdf()
    publisher = fhirpy_client(live, "system")
    created = publisher.resource("DocumentReference", **document_reference(content))
    created.save()
    record_id = created.id
    assert record_id
    assert len(record_id) == 32

    doctor = fhirpy_client(live, "doctor")
    found = doctor.resources("DocumentReference").search(patient=MRN, type="11502-2").fetch_all()
    assert record_id in [item.id for item in found]
    binary = doctor.get("Binary", record_id)
    assert base64.b64decode(binary["data"]) == content

    server = fhirclient_server(live, "doctor")
    raw = server.request_data(f"Binary/{record_id}", headers={"Accept": "application/pdf"})
    assert raw == content


def test_iti65_transaction_with_fhirclient(live: LiveBridge, cast: Cast) -> None:
    first, second = pdf(), pdf()
    bundle = transaction([("lab-results", first), ("radiation-dose", second)])
    server = fhirclient_server(live, "system")
    answer = server.post_json("", bundle).json()
    assert answer["type"] == "transaction-response"
    locations = [entry["response"]["location"] for entry in answer["entry"]]
    assert [loc.split("/")[0] for loc in locations] == [
        "List", "DocumentReference", "Binary", "DocumentReference", "Binary"
    ]  # fmt: skip
    assert all(entry["response"]["status"].startswith("201") for entry in answer["entry"])
    assert locations[1].split("/")[1] == locations[2].split("/")[1]

    doctor = fhirclient_server(live, "doctor")
    search = FcDocumentReference.where(
        struct={"patient.identifier": f"{MRN_SYSTEM}|{MRN}", "category": "18748-4"}
    )
    ids = [resource.id for resource in search.perform_resources_iter(doctor)]
    assert locations[3].split("/")[1] in ids
    assert doctor.request_data(locations[4], headers={"Accept": "application/pdf"}) == second
    lists = doctor.request_json(f"List?patient={MRN}&code=submissionset")
    assert any(
        {e["item"]["reference"] for e in item["resource"]["entry"]} >= {locations[1], locations[3]}
        for item in lists.get("entry", [])
    )


def test_retry_of_the_same_master_identifier_publishes_nothing_twice(
    http: Http, live: LiveBridge, cast: Cast
) -> None:
    resource = document_reference(pdf())
    client = http("system")
    first = client.post(f"{live.fhir}/DocumentReference", json=resource)
    assert first.status_code == 201
    before = record_count(cast)
    again = client.post(f"{live.fhir}/DocumentReference", json=resource)
    assert again.status_code == 200
    assert again.headers["location"] == first.headers["location"]
    assert record_count(cast) == before


def test_search_pages_with_next_links(http: Http, live: LiveBridge) -> None:
    system = http("system")
    for _ in range(3):
        response = system.post(f"{live.fhir}/DocumentReference", json=document_reference(pdf(2000)))
        assert response.status_code == 201
    doctor = http("doctor")
    page = doctor.get(f"{live.fhir}/DocumentReference", params={"patient": MRN, "_count": 2}).json()
    seen = [e["resource"]["id"] for e in page["entry"]]
    assert len(seen) == 2
    assert page["total"] >= 3
    while nexts := [link["url"] for link in page["link"] if link["relation"] == "next"]:
        page = doctor.get(nexts[0]).json()
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
    assert len(seen) == len(set(seen)) == page["total"]
    posted = doctor.post(
        f"{live.fhir}/DocumentReference/_search",
        data={"patient.identifier": f"{MRN_SYSTEM}|{MRN}", "date": "ge2026-11-20"},
    ).json()
    assert posted["total"] == page["total"]
    empty = doctor.get(
        f"{live.fhir}/DocumentReference", params={"patient": MRN, "date": "lt2000-01-01"}
    ).json()
    assert empty["resourceType"] == "Bundle"
    assert empty["total"] == 0


def test_denied_read_is_403_and_on_the_ledger(http: Http, live: LiveBridge, cast: Cast) -> None:
    system = fhirpy_client(live, "system")
    created = system.resource(
        "DocumentReference", **document_reference(pdf(), category="treatment-summary")
    )
    created.save()
    doctor = http("doctor")
    answer = doctor.get(f"{live.fhir}/Binary/{created.id}")
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert answer.json()["resourceType"] == "OperationOutcome"
    with cast.client(cast.patient) as patient:
        events = patient.audit()
    assert any(
        e.actor == "dr-grey" and e.record_id == created.id and e.decision == "denied"
        for e in events
    )
    # a system with write only may not search at all: the ledger says no, not the scope
    with pytest.raises(ForbiddenError):
        system.resources("DocumentReference").search(patient=MRN).fetch()


def test_scope_and_token_are_checked(live: LiveBridge) -> None:
    anonymous = httpx.get(f"{live.fhir}/DocumentReference", params={"patient": MRN})
    assert anonymous.status_code == 401
    assert anonymous.json()["issue"][0]["code"] == "login"
    narrow = httpx.post(
        f"{live.fhir}/DocumentReference",
        json=document_reference(pdf()),
        headers={"Authorization": "Bearer narrow"},
    )
    assert narrow.status_code == 403
    wrong = httpx.get(f"{live.fhir}/metadata", headers={"Authorization": "Bearer nobody"})
    assert wrong.status_code == 200
    assert wrong.json()["fhirVersion"] == "4.0.1"


def test_audit_events_and_consents(http: Http, live: LiveBridge) -> None:
    doctor = http("doctor")
    doctor.get(f"{live.fhir}/DocumentReference", params={"patient": MRN})
    auditor = http("auditor")
    events = auditor.get(f"{live.fhir}/AuditEvent", params={"patient": MRN}).json()
    outcomes = {e["resource"]["outcome"] for e in events["entry"]}
    assert "0" in outcomes
    consents = doctor.get(f"{live.fhir}/Consent", params={"patient": MRN}).json()
    provisions = [e["resource"]["provision"] for e in consents["entry"]]
    assert provisions
    assert all(p["type"] == "permit" for p in provisions)
    codes = {c["coding"][0]["code"] for p in provisions for c in p.get("code", [])}
    assert codes == {"11502-2", "73569-6"}


def test_concurrent_duplicates_publish_once(live: LiveBridge, cast: Cast, http: Http) -> None:
    resource = document_reference(pdf(5000))
    before = record_count(cast)
    client = http("system")
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: client.post(f"{live.fhir}/DocumentReference", json=resource), range(4)
            )
        )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.headers["location"] for a in answers}) == 1
    assert record_count(cast) == before + 1


def test_scope_never_widens_the_ledger(live: LiveBridge, cast: Cast, http: Http) -> None:
    """A token allowed to create, for an identity the patient gave no write grant: 403,
    an OperationOutcome, and the refusal is on the ledger."""
    before = record_count(cast)
    answer = http("doctor-writer").post(
        f"{live.fhir}/DocumentReference", json=document_reference(pdf())
    )
    assert answer.status_code == 403
    assert answer.json()["issue"][0]["code"] == "forbidden"
    assert record_count(cast) == before
    with cast.client(cast.patient) as patient:
        events = patient.audit()
    assert any(e.actor == "dr-grey" and e.decision == "denied" and e.record_id is None
               for e in events)  # fmt: skip


def test_read_one_document_reference(live: LiveBridge, http: Http) -> None:
    content = pdf(1000)
    created = http("system").post(
        f"{live.fhir}/DocumentReference", json=document_reference(content)
    )
    record_id = created.headers["location"].rsplit("/", 1)[1]
    read = http("doctor").get(f"{live.fhir}/DocumentReference/{record_id}").json()
    attachment = read["content"][0]["attachment"]
    assert read["id"] == record_id
    assert attachment["size"] == len(content)
    assert attachment["url"].endswith(f"/Binary/{record_id}")
    assert read["subject"]["identifier"]["value"] == MRN


def test_denied_search_is_an_authz_audit_event(live: LiveBridge, http: Http) -> None:
    doctor = http("doctor")
    refused = doctor.get(
        f"{live.fhir}/DocumentReference", params={"patient": MRN, "category": "18776-5"}
    )
    assert refused.status_code == 403
    events = http("auditor").get(f"{live.fhir}/AuditEvent", params={"patient": MRN}).json()
    denied = [e["resource"] for e in events["entry"] if e["resource"]["outcome"] == "8"]
    assert denied
    assert denied[-1]["type"]["code"] == "110113"
    assert denied[-1]["subtype"][0]["code"] == "AuthZ-Consent"


def test_retry_after_lost_bookkeeping_commits_nothing_twice(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    """Even when the bridge lost its unique id → record row (a crash between commit and
    bookkeeping), the record id derived from the unique id makes the ledger refuse a second
    record; and the same unique id with other bytes is refused."""
    resource = document_reference(pdf(3000))
    client = http("system")
    first = client.post(f"{live.fhir}/DocumentReference", json=resource)
    assert first.status_code == 201
    unique_id = resource["masterIdentifier"]["value"]
    with sqlite3.connect(live.settings.data_dir / "bridge.sqlite3") as db:
        db.execute("DELETE FROM published WHERE unique_id = ?", (unique_id,))
    before = record_count(cast)
    again = client.post(f"{live.fhir}/DocumentReference", json=resource)
    assert again.status_code == 200
    assert again.headers["location"] == first.headers["location"]
    assert record_count(cast) == before
    other = document_reference(pdf(3000), unique_id=unique_id)
    refused = client.post(f"{live.fhir}/DocumentReference", json=other)
    assert refused.status_code == 400
    assert "other content" in refused.json()["issue"][0]["diagnostics"]
    assert record_count(cast) == before


def _damage_stored_body(cast: Cast, record_id: str, *, at: int) -> None:
    """Flip one bit of the record's stored body, byte *at*."""
    with cast.client(cast.doctor) as reader:
        record = reader.record(record_id).record
    blob = next(cast.data_dir.rglob(record.body_sha256))
    damaged = bytearray(blob.read_bytes())
    damaged[at] ^= 0x01
    blob.write_bytes(bytes(damaged))


def test_a_tampered_body_is_never_served(live: LiveBridge, cast: Cast, http: Http) -> None:
    """ITI-68 goes through the SDK's verifying fetch: a changed stored byte is refused."""
    content = pdf(200_000)
    created = http("system").post(
        f"{live.fhir}/DocumentReference", json=document_reference(content)
    )
    record_id = created.headers["location"].rsplit("/", 1)[1]
    doctor = http("doctor")
    assert doctor.get(f"{live.fhir}/Binary/{record_id}").content == content
    _damage_stored_body(cast, record_id, at=100_000)
    answer = doctor.get(f"{live.fhir}/Binary/{record_id}")
    assert answer.status_code == 502
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert b"%PDF" not in answer.content


def _read_into(answer: httpx.Response, received: bytearray) -> None:
    for chunk in answer.iter_bytes():
        received += chunk


def test_a_body_damaged_past_its_first_megabyte_is_cut_short(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    """ITI-68 passes a large PDF on as it is opened: a changed byte far into it ends the
    answer short of its Content-Length, which the client reports; never a whole."""
    content = pdf(3 * 1024 * 1024)  # larger than this bridge takes in; the SDK uploads it
    with cast.client(cast.system) as system:
        uploaded = system.upload(
            io.BytesIO(content), pseudonym=cast.pseudonym, category="lab-results", filename="a.pdf"
        )
    record_id = uploaded.record.record_id
    doctor = http("doctor")
    whole = doctor.get(f"{live.fhir}/Binary/{record_id}")
    assert whole.content == content
    assert whole.headers["content-length"] == str(len(content))
    _damage_stored_body(cast, record_id, at=2_500_000)
    received = bytearray()
    with doctor.stream("GET", f"{live.fhir}/Binary/{record_id}") as answer:
        assert answer.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            _read_into(answer, received)
    assert len(received) < 2_500_000
    assert bytes(received) == content[: len(received)]


def test_a_resent_transaction_publishes_nothing_twice(
    live: LiveBridge, cast: Cast, http: Http
) -> None:
    bundle = transaction([("lab-results", pdf(1500)), ("radiation-dose", pdf(1500))])
    client = http("system")
    first = client.post(live.fhir, json=bundle).json()
    before = record_count(cast)
    second = client.post(live.fhir, json=bundle).json()
    assert [e["response"]["location"] for e in second["entry"]] == [
        e["response"]["location"] for e in first["entry"]
    ]
    assert record_count(cast) == before
