"""Tampering is refused with the right error and audited: bodies, capsules, signatures,
replays."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from envelope import b64encode
from gateway import Settings
from ledger.wire import builders
from tests.gateway import scenario
from tests.gateway.helpers import (
    ManualClock,
    TestClient,
    World,
    metrics_text,
    signed_token_request,
    tx_json,
)
from tests.gateway.live import live_world

INTEGRITY = "urn:ehrgate:problem:integrity-error"


def _blob_path(settings: Settings, sha256: str) -> Path:
    return settings.data_dir / "blobs" / "blobs" / sha256[:2] / sha256


@pytest.fixture
def story(world: World) -> tuple[scenario.Cast, dict[str, Any]]:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"])
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    world.share_key(cast.patient, cast.doctor)
    record = world.ingest_pdf(cast.system, cast.patient, "lab-results", scenario.PDF)
    return cast, record


def _audit(world: World, cast: scenario.Cast) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/patients/{cast.patient.pseudonym}/audit",
        headers=world.headers(cast.patient.identity),
    )
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _assert_integrity_audited(world: World, cast: scenario.Cast, record_id: str) -> None:
    last = [event for event in _audit(world, cast) if event["record_id"] == record_id][-1]
    assert (last["actor"], last["record_id"], last["decision"]) == (
        cast.doctor.id,
        record_id,
        "denied",
    )
    assert last["reason"].startswith("integrity")
    metrics = metrics_text(world.client)
    assert "ehrgate_integrity_failures_total 1.0" in metrics


def test_a_changed_byte_in_a_stored_body_is_refused_and_audited(
    world: World, settings: Settings, story: tuple[scenario.Cast, dict[str, Any]]
) -> None:
    cast, record = story
    path = _blob_path(settings, record["body_sha256"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    response = world.client.get(
        f"/v1/records/{record['record_id']}/body", headers=world.headers(cast.doctor)
    )
    assert response.status_code == 502
    assert response.json()["type"] == INTEGRITY
    _assert_integrity_audited(world, cast, record["record_id"])


def test_a_swapped_body_is_refused_and_audited(
    world: World, settings: Settings, story: tuple[scenario.Cast, dict[str, Any]]
) -> None:
    cast, record = story
    other = world.ingest_pdf(cast.system, cast.patient, "lab-results", b"%PDF-1.4 other\n")
    # The other record's (valid, sealed) body now sits under the first record's key.
    _blob_path(settings, record["body_sha256"]).write_bytes(
        _blob_path(settings, other["body_sha256"]).read_bytes()
    )
    response = world.client.get(
        f"/v1/records/{record['record_id']}/body", headers=world.headers(cast.doctor)
    )
    assert response.status_code == 502
    assert response.json()["type"] == INTEGRITY
    _assert_integrity_audited(world, cast, record["record_id"])


def test_a_changed_capsule_is_refused_and_audited(
    world: World, settings: Settings, story: tuple[scenario.Cast, dict[str, Any]]
) -> None:
    cast, record = story
    from ledger import schema

    engine = sa.create_engine(settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(
            schema.capsules.update()
            .where(schema.capsules.c.sha256 == record["capsule_sha256"])
            .values(data=b'{"forged": true}')
        )
    engine.dispose()
    response = world.client.get(
        f"/v1/records/{record['record_id']}/capsule", headers=world.headers(cast.doctor)
    )
    assert response.status_code == 502
    assert response.json()["type"] == INTEGRITY
    _assert_integrity_audited(world, cast, record["record_id"])


def test_a_body_corrupted_past_its_first_chunk_is_cut_short_and_audited(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    big_pdf = b"%PDF-1.7\n" + bytes(range(256)) * (12 * 1024)  # 3 MiB: several chunks
    with live_world(settings, clock) as (_, world):
        client = world.client
        cast = scenario.set_up(world)
        world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"])
        world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
        record = world.ingest_pdf(cast.system, cast.patient, "lab-results", big_pdf)
        path = _blob_path(settings, record["body_sha256"])
        data = bytearray(path.read_bytes())
        data[-100] ^= 0x01
        path.write_bytes(bytes(data))
        received = bytearray()
        with pytest.raises(httpx.HTTPError):
            _stream_into(received, client, f"/v1/records/{record['record_id']}/body", world, cast)
        assert len(received) < record["size"]
        _assert_integrity_audited(world, cast, record["record_id"])


def _stream_into(
    received: bytearray, client: httpx.Client, path: str, world: World, cast: scenario.Cast
) -> None:
    with client.stream("GET", path, headers=world.headers(cast.doctor)) as response:
        assert response.status_code == 200  # the headers left before the damage was seen
        for chunk in response.iter_bytes():
            received += chunk


def test_a_forged_grant_signature_is_refused_and_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    cast = scenario.set_up(world)
    now = world.clock()
    tx = scenario.read_grant(cast, now, lasting=timedelta(days=1), categories=["lab-results"])
    forged = tx_json(tx)
    forged["body"]["categories"] = "all"  # widened after the patient signed
    with caplog.at_level(logging.WARNING, logger="gateway.transactions"):
        response = world.client.post(
            "/v1/permissions", json=forged, headers=world.headers(cast.patient.identity)
        )
    assert response.status_code == 422
    assert response.json()["type"] == "urn:ehrgate:problem:rule-violation"
    assert response.json()["code"] == "bad-signature"
    assert "bad-signature" in caplog.text
    metrics = metrics_text(world.client)
    assert 'ehrgate_rejected_transactions_total{code="bad-signature",type="grant"} 1.0' in metrics
    listing = world.client.get(
        f"/v1/patients/{cast.patient.pseudonym}/permissions",
        headers=world.headers(cast.patient.identity),
    )
    assert listing.json()["permissions"] == []


def test_a_grant_signed_by_someone_else_for_the_patient_is_refused(world: World) -> None:
    cast = scenario.set_up(world)
    now = world.clock()
    tx = scenario.read_grant(  # the doctor signs a grant to itself on the patient's pseudonym
        cast, now, lasting=timedelta(days=1), signer=cast.doctor
    )
    response = world.client.post(
        "/v1/permissions", json=tx_json(tx), headers=world.headers(cast.doctor)
    )
    assert response.status_code == 403
    assert response.json()["code"] == "not-owner"


def test_a_patient_transaction_submitted_by_another_caller_is_refused(world: World) -> None:
    cast = scenario.set_up(world)
    now = world.clock()
    tx = scenario.read_grant(cast, now, lasting=timedelta(days=1))
    response = world.client.post(
        "/v1/permissions", json=tx_json(tx), headers=world.headers(cast.doctor)
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:ehrgate:problem:forbidden"


def test_a_replayed_transaction_is_refused(world: World) -> None:
    cast = scenario.set_up(world)
    now = world.clock()
    tx = scenario.read_grant(cast, now, lasting=timedelta(days=1), categories=["lab-results"])
    headers = world.headers(cast.patient.identity)
    assert (
        world.client.post("/v1/permissions", json=tx_json(tx), headers=headers).status_code == 201
    )
    again = world.client.post("/v1/permissions", json=tx_json(tx), headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] in {"replayed", "duplicate-permission"}


def test_a_replayed_token_after_expiry_is_refused_and_counted(
    world: World, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cast = scenario.set_up(world)
    headers = world.headers(cast.doctor)
    clock.advance(timedelta(minutes=16))
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        response = world.client.get("/v1/identities/me", headers=headers)
    assert "authentication refused (invalid-token)" in caplog.text
    assert headers["Authorization"].split()[1] not in caplog.text
    assert response.status_code == 401
    assert response.json()["type"] == "urn:ehrgate:problem:invalid-token"
    assert 'ehrgate_auth_failures_total{reason="invalid-token"} 1.0' in (metrics_text(world.client))


def test_a_replayed_challenge_is_refused_and_counted(
    client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    admin = world.admin
    challenge = client.post("/v1/auth/challenge", json={"identity_id": admin.id}).json()
    request = signed_token_request(admin, challenge)
    assert client.post("/v1/auth/token", json=request).status_code == 200
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        replay = client.post("/v1/auth/token", json=request)
    assert f"authentication refused (invalid-challenge) for identity {admin.id}" in caplog.text
    assert replay.status_code == 401
    assert replay.json()["type"] == "urn:ehrgate:problem:invalid-challenge"
    assert 'ehrgate_auth_failures_total{reason="invalid-challenge"} 1.0' in (metrics_text(client))


def test_a_record_for_a_body_that_was_never_stored_is_refused(world: World) -> None:
    import hashlib

    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    capsule = b"capsule"
    missing = "ab" * 32
    tx = builders.record(
        cast.system,
        pseudonym=cast.patient.pseudonym,
        category="lab-results",
        body_sha256=missing,
        size=10,
        locators=[f"file://local/blobs/{missing[:2]}/{missing}"],
        capsule_sha256=hashlib.sha256(capsule).hexdigest(),
        content_type="application/pdf",
        created_at=world.clock(),
        issued_at=world.clock(),
    )
    response = world.client.post(
        "/v1/records",
        json={"transaction": tx_json(tx), "capsule": b64encode(capsule)},
        headers=world.headers(cast.system),
    )
    assert response.status_code == 422
    assert "upload it" in response.json()["detail"]
