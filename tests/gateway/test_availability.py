"""A backing service down: a clear 503, no half-written state, and no unaudited read."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from envelope import PatientKeys
from gateway import Settings
from ledger.wire import builders
from tests.gateway import scenario
from tests.gateway.helpers import World, tx_json

UNAVAILABLE = "urn:ehrgate:problem:service-unavailable"


@pytest.fixture
def story(world: World) -> tuple[scenario.Cast, dict[str, Any]]:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"])
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    record = world.ingest_pdf(cast.system, cast.patient, "lab-results", scenario.PDF)
    return cast, record


def _break_store(settings: Settings) -> None:
    root = settings.data_dir / "blobs"
    shutil.rmtree(root)
    root.write_bytes(b"")  # a file where the store's directory was


def test_a_store_down_refuses_uploads_with_503_and_no_record(
    world: World, settings: Settings, story: tuple[scenario.Cast, dict[str, Any]]
) -> None:
    cast, _ = story
    before = world.client.get("/v1/ledger/head").json()["tree_head"]["tree_size"]
    _break_store(settings)
    response = world.client.post(
        "/v1/documents",
        params={
            "pseudonym": cast.patient.pseudonym,
            "category": "lab-results",
            "filename": "a.pdf",
        },
        content=scenario.PDF,
        headers={**world.headers(cast.system), "Content-Type": "application/pdf"},
    )
    assert response.status_code == 503
    assert response.json()["type"] == UNAVAILABLE
    assert "retry-after" in response.headers
    after = world.client.get("/v1/ledger/head").json()["tree_head"]["tree_size"]
    assert after == before


def test_a_store_down_makes_reads_503_after_auditing_them(
    world: World, settings: Settings, story: tuple[scenario.Cast, dict[str, Any]]
) -> None:
    cast, record = story
    _break_store(settings)
    response = world.client.get(
        f"/v1/records/{record['record_id']}/body", headers=world.headers(cast.doctor)
    )
    assert response.status_code == 503, response.text
    assert response.json()["type"] == UNAVAILABLE
    assert scenario.PDF[:5] not in response.content


def test_a_body_missing_from_every_store_is_an_audited_integrity_error(
    world: World, settings: Settings, story: tuple[scenario.Cast, dict[str, Any]]
) -> None:
    cast, record = story
    sha = record["body_sha256"]
    (settings.data_dir / "blobs" / "blobs" / sha[:2] / sha).unlink()
    response = world.client.get(
        f"/v1/records/{record['record_id']}/body", headers=world.headers(cast.doctor)
    )
    assert response.status_code == 502
    assert response.json()["type"] == "urn:ehrgate:problem:integrity-error"


def test_no_read_is_served_when_the_ledger_cannot_audit_it(
    world: World, story: tuple[scenario.Cast, dict[str, Any]]
) -> None:
    cast, record = story
    headers = world.headers(cast.doctor)
    world.client.app.state.gateway.backends.ledger.close()
    for path in ("/body", "/capsule", ""):
        response = world.client.get(f"/v1/records/{record['record_id']}{path}", headers=headers)
        assert response.status_code == 503, path
        assert response.json()["type"] == UNAVAILABLE
        assert scenario.PDF[:5] not in response.content


def test_registration_is_rate_limited_per_client_address(world: World) -> None:
    statuses = []
    for index in range(40):
        patient = PatientKeys.generate({"name": f"p{index}"})
        tx = builders.register_patient(
            patient.identity,
            patient.pseudonym,
            patient.patient_key.record_public_key().to_bytes(),
            issued_at=world.clock(),
        )
        statuses.append(world.client.post("/v1/patients", json=tx_json(tx)).status_code)
    assert statuses[0] == 201
    assert 429 in statuses
