"""Uploads: sealed bodies plus signed records (the SDK's path), and plaintext PDF ingest.

Each refusal leaves nothing behind: no body in the store, no record on the ledger.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from envelope import b64encode, seal
from envelope.scoped import scoped_record_key
from gateway import Settings, create_app
from ledger.wire import builders
from ledger.wire.clock import format_time
from tests.gateway import scenario
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, TestClient, World, tx_json


def _stored_bodies(settings: Settings) -> list[Path]:
    root = settings.data_dir / "blobs" / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _records(world: World, cast: scenario.Cast) -> list[object]:
    response = world.client.get(
        f"/v1/patients/{cast.patient.pseudonym}/records",
        headers=world.headers(cast.patient.identity),
    )
    records: list[object] = response.json()["records"]
    return records


def _for(cast: scenario.Cast) -> dict[str, str]:
    """The query of a body upload: the patient and category it is for."""
    return {"pseudonym": cast.patient.pseudonym, "category": "lab-results"}


@pytest.fixture
def cast(world: World) -> scenario.Cast:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.doctor, ["read", "write"], ["lab-results"])
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    world.share_key(cast.patient, cast.doctor)
    return cast


def test_a_client_sealed_upload_then_signed_record_reads_back(
    world: World, cast: scenario.Cast
) -> None:
    """What the SDK does: seal locally, stream the body, commit a record it signed."""
    created_at = format_time(world.clock())
    month_key = scoped_record_key(cast.patient.patient_key, "lab-results", created_at)
    body_out = io.BytesIO()
    sealed = seal(
        io.BytesIO(scenario.PDF),
        body_out,
        recipients=[(cast.patient.pseudonym, month_key.public_key())],
        scoped=True,
        filename="report.pdf",
        content_type="application/pdf",
        pseudonym=cast.patient.pseudonym,
        category="lab-results",
        created_at=created_at,
        uploader_id=cast.doctor.id,
        signer=cast.doctor,
    )
    headers = world.headers(cast.doctor)
    uploaded = world.client.post(
        "/v1/blobs",
        params={**_for(cast), "sha256": sealed.body_sha256},
        content=body_out.getvalue(),
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    blob = uploaded.json()
    assert (blob["sha256"], blob["size"]) == (sealed.body_sha256, sealed.body_size)
    tx = builders.record(
        cast.doctor,
        pseudonym=cast.patient.pseudonym,
        category="lab-results",
        body_sha256=blob["sha256"],
        size=blob["size"],
        locators=blob["locators"],
        capsule_sha256=sealed.capsule_sha256,
        content_type="application/pdf",
        created_at=created_at,
        issued_at=world.clock(),
    )
    committed = world.client.post(
        "/v1/records",
        json={"transaction": tx_json(tx), "capsule": b64encode(sealed.capsule)},
        headers=headers,
    )
    assert committed.status_code == 201, committed.text
    result = committed.json()
    assert result["receipt"]["tree_head"]["tree_size"] > result["receipt"]["index"]
    assert scenario.fetch_and_decrypt(world, cast.doctor, result["record"]) == scenario.PDF
    # The capsule has a second, content-addressed copy next to the bodies.
    capsule_sha = hashlib.sha256(sealed.capsule).hexdigest()
    assert any(p.name == capsule_sha for p in _stored_bodies(world_settings(world)))


def world_settings(world: World) -> Settings:
    settings: Settings = world.client.app.state.gateway.settings
    return settings


def test_an_announced_sha256_that_does_not_match_stores_nothing(
    world: World, cast: scenario.Cast, settings: Settings
) -> None:
    before = _stored_bodies(settings)
    response = world.client.post(
        "/v1/blobs",
        params={**_for(cast), "sha256": "0" * 64},
        content=b"sealed bytes",
        headers={**world.headers(cast.system), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422
    assert _stored_bodies(settings) == before


def test_a_blob_upload_needs_octet_stream(world: World, cast: scenario.Cast) -> None:
    response = world.client.post(
        "/v1/blobs",
        params=_for(cast),
        content=b"{}",
        headers={**world.headers(cast.system), "Content-Type": "application/json"},
    )
    assert response.status_code == 415


def test_a_non_pdf_claiming_to_be_a_pdf_is_refused_and_nothing_is_stored(
    world: World, cast: scenario.Cast, settings: Settings
) -> None:
    before = _stored_bodies(settings)
    response = world.client.post(
        "/v1/documents",
        params={
            "pseudonym": cast.patient.pseudonym,
            "category": "lab-results",
            "filename": "x.pdf",
        },
        content=b"MZ\x90\x00 this is an executable",
        headers={**world.headers(cast.system), "Content-Type": "application/pdf"},
    )
    assert response.status_code == 415
    assert "not a PDF" in response.json()["detail"]
    assert _stored_bodies(settings) == before
    assert _records(world, cast) == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"category": "lab-results", "filename": "../../etc/passwd"}, 422),
        ({"category": "no-such-category", "filename": "a.pdf"}, 422),
        ({"category": "radiation-dose", "filename": "a.pdf"}, 403),  # no write right there
    ],
)
def test_bad_document_requests_are_refused_before_storing(
    world: World,
    cast: scenario.Cast,
    settings: Settings,
    params: dict[str, str],
    status: int,
) -> None:
    before = _stored_bodies(settings)
    response = world.client.post(
        "/v1/documents",
        params={"pseudonym": cast.patient.pseudonym, **params},
        content=scenario.PDF,
        headers={**world.headers(cast.system), "Content-Type": "application/pdf"},
    )
    assert response.status_code == status, response.text
    assert _stored_bodies(settings) == before


def test_a_document_for_an_unknown_patient_is_404(world: World, cast: scenario.Cast) -> None:
    response = world.client.post(
        "/v1/documents",
        params={"pseudonym": "e" * 64, "category": "lab-results", "filename": "a.pdf"},
        content=scenario.PDF,
        headers={**world.headers(cast.system), "Content-Type": "application/pdf"},
    )
    assert response.status_code == 404


@pytest.fixture
def small_gateway(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[World, Settings]]:
    settings = Settings.model_validate(
        {"data_dir": tmp_path / "data", "max_body_size": "256KiB", "max_json_size": "64KiB"}
    )
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        yield World(client, clock, first_admin(settings)), settings


def test_an_oversized_streamed_document_is_413_and_nothing_is_stored(
    small_gateway: tuple[World, Settings],
) -> None:
    world, settings = small_gateway
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])

    def chunks() -> Iterator[bytes]:
        yield b"%PDF-1.7\n"
        for _ in range(64):
            yield b"x" * 8192

    response = world.client.post(
        "/v1/documents",
        params={
            "pseudonym": cast.patient.pseudonym,
            "category": "lab-results",
            "filename": "a.pdf",
        },
        content=chunks(),
        headers={**world.headers(cast.system), "Content-Type": "application/pdf"},
    )
    assert response.status_code == 413
    assert _stored_bodies(settings) == []
    incoming = settings.data_dir / "blobs" / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
    assert _records(world, cast) == []


def test_listing_without_a_category_shows_only_readable_categories(
    world: World, cast: scenario.Cast
) -> None:
    world.grant(cast.patient, cast.system, ["write"], ["radiation-dose"])
    lab = world.ingest_pdf(cast.system, cast.patient, "lab-results", scenario.PDF)
    world.ingest_pdf(cast.system, cast.patient, "radiation-dose", scenario.PDF)
    doctor_view = world.client.get(
        f"/v1/patients/{cast.patient.pseudonym}/records", headers=world.headers(cast.doctor)
    )
    assert [r["record_id"] for r in doctor_view.json()["records"]] == [lab["record_id"]]
    assert len(_records(world, cast)) == 2  # the patient sees everything


def test_ingest_keeps_no_plaintext_anywhere(
    world: World, cast: scenario.Cast, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    marker = b"PATIENT-NAME-7f3a9c-DO-NOT-STORE"
    pdf = b"%PDF-1.7\n" + marker + b"\n" + scenario.PDF[9:]
    with caplog.at_level("DEBUG"):
        world.ingest_pdf(cast.system, cast.patient, "lab-results", pdf)
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes(), f"plaintext found in {path}"
    assert marker.decode() not in caplog.text
