"""The plaintext-ingest path seals to the patient's published key of the category and month,
and refuses a month without one before storing anything."""

from __future__ import annotations

from pathlib import Path

from envelope import capsule_key_id, open_with_patient_key
from tests.gateway import scenario
from tests.gateway.helpers import World


def _blobs(settings_dir: Path) -> list[Path]:
    return sorted(p for p in settings_dir.rglob("*") if p.is_file() and "blobs" in p.parts)


def test_ingest_seals_to_the_published_month_key(world: World) -> None:
    patient = world.register_patient("Scoped Ingest")
    system = world.enroll("his-scoped", "system")
    world.grant(patient, system, ["write"], ["lab-results"])
    record = world.ingest_pdf(system, patient, "lab-results", scenario.PDF)
    capsule = world.client.get(
        f"/v1/records/{record['record_id']}/capsule", headers=world.headers(patient.identity)
    )
    assert capsule.status_code == 200, capsule.text
    month = record["created_at"][:7]
    assert capsule_key_id(capsule.content, patient.pseudonym) == f"scoped-v2/lab-results/{month}"
    opened = open_with_patient_key(capsule.content, patient.patient_key, patient.pseudonym)
    assert opened.category == "lab-results"


def test_ingest_without_a_published_key_is_refused_and_stores_nothing(
    world: World, tmp_path: Path
) -> None:
    patient = world.register_patient("Unpublished", publish=False)
    system = world.enroll("his-unpublished", "system")
    world.grant(patient, system, ["write"], ["lab-results"])
    size = world.client.get("/v1/ledger/head").json()["tree_head"]["tree_size"]
    blobs = _blobs(tmp_path)
    response = world.client.post(
        "/v1/documents",
        params={"pseudonym": patient.pseudonym, "category": "lab-results", "filename": "r.pdf"},
        content=scenario.PDF,
        headers={**world.headers(system), "Content-Type": "application/pdf"},
    )
    assert response.status_code == 409, response.text
    assert "ehrgate patient publish-keys" in response.json()["detail"]
    assert _blobs(tmp_path) == blobs
    records = world.client.get(
        f"/v1/patients/{patient.pseudonym}/records", headers=world.headers(patient.identity)
    ).json()["records"]
    assert records == []
    # the refused ingest is audited (one access entry), nothing else is appended
    assert world.client.get("/v1/ledger/head").json()["tree_head"]["tree_size"] <= size + 1
