"""A read right that ends while a body streams: at most one more sealed segment leaves.

Defined behaviour: the gateway re-checks the read right before each sealed segment
(64 KiB + 16 bytes) of a streaming body; when the right has ended it writes a `denied`
access entry and cuts the stream. Pins `Access.still_allowed()` in the body route.
"""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest

from envelope import b64encode, seal
from gateway.routes.records import SEGMENT_BYTES
from ledger.wire import builders
from ledger.wire.clock import format_time
from tests.gateway import scenario
from tests.gateway.helpers import World, tx_json

pytestmark = pytest.mark.faults


@pytest.fixture
def world(gateway_world: World) -> World:
    return gateway_world


def upload_sealed(world: World, cast: scenario.Cast, plaintext: bytes) -> tuple[str, int]:
    """Seal, upload and commit as the doctor; returns (record id, sealed body size)."""
    body = io.BytesIO()
    created_at = format_time(world.clock())
    sealed = seal(
        io.BytesIO(plaintext), body,
        recipients=[(cast.patient.pseudonym, cast.patient.patient_key.record_public_key())],
        filename="scan.pdf", content_type="application/pdf", pseudonym=cast.patient.pseudonym,
        category="lab-results", created_at=created_at, uploader_id=cast.doctor.id,
        signer=cast.doctor,
    )  # fmt: skip
    headers = world.headers(cast.doctor)
    blob = world.client.post(
        "/v1/blobs", content=body.getvalue(), params={
            "pseudonym": cast.patient.pseudonym, "category": "lab-results",
            "sha256": sealed.body_sha256},
        headers={**headers, "Content-Type": "application/octet-stream"},
    ).json()  # fmt: skip
    tx = builders.record(
        cast.doctor, pseudonym=cast.patient.pseudonym, category="lab-results",
        body_sha256=blob["sha256"], size=blob["size"], locators=blob["locators"],
        capsule_sha256=sealed.capsule_sha256, content_type="application/pdf",
        created_at=created_at, issued_at=world.clock(),
    )  # fmt: skip
    committed = world.client.post(
        "/v1/records", json={"transaction": tx_json(tx), "capsule": b64encode(sealed.capsule)},
        headers=headers,
    )  # fmt: skip
    assert committed.status_code == 201, committed.text
    return str(committed.json()["record"]["record_id"]), sealed.body_size


def stream_body(world: World, cast: scenario.Cast, record_id: str, expire_after: int) -> tuple[
    int, int | None
]:  # fmt: skip
    """Bytes received in all, and when the clock passed the end of the right."""
    received = 0
    at_expiry = None
    path = f"/v1/records/{record_id}/body"
    with world.client.stream("GET", path, headers=world.headers(cast.doctor)) as answer:
        assert answer.status_code == 200
        for piece in answer.iter_raw():
            received += len(piece)
            if at_expiry is None and received >= expire_after:
                world.clock.advance(timedelta(minutes=11))  # the right ends now
                at_expiry = received
    return received, at_expiry


def test_a_right_ending_mid_stream_cuts_the_body_within_one_segment(world: World) -> None:
    cast = scenario.set_up(world)
    until = world.clock() + timedelta(minutes=10)
    world.grant(cast.patient, cast.doctor, ["read", "write"], ["lab-results"], not_after=until)
    record_id, size = upload_sealed(world, cast, os.urandom(3 * 1024 * 1024))

    received, at_expiry = stream_body(world, cast, record_id, expire_after=2 * SEGMENT_BYTES)

    assert at_expiry is not None
    assert received < size, "the whole body was served after the right ended"
    assert received - at_expiry <= SEGMENT_BYTES
    events = world.client.get(
        f"/v1/patients/{cast.patient.pseudonym}/audit", headers=world.headers(cast.patient.identity)
    ).json()["events"]
    cut = [e for e in events if "ended while the body was streaming" in e["reason"]]
    assert [(e["actor"], e["decision"], e["record_id"]) for e in cut] == [
        (cast.doctor.id, "denied", record_id)
    ]


def test_a_right_that_holds_streams_the_whole_body(world: World) -> None:
    cast = scenario.set_up(world)
    world.grant(cast.patient, cast.doctor, ["read", "write"], ["lab-results"])
    record_id, size = upload_sealed(world, cast, os.urandom(3 * 1024 * 1024))
    received = 0
    path = f"/v1/records/{record_id}/body"
    with world.client.stream("GET", path, headers=world.headers(cast.doctor)) as answer:
        for piece in answer.iter_raw():
            received += len(piece)
    assert received == size
