"""A refused record stores nothing, and only a writer stores bodies.

Each way the ledger refuses a `record` (a taken record id, no write right, an unknown
category, an unknown pseudonym, an issued_at in the future) leaves the stores and the
ledger's capsule table as they were; a clinician with a read right alone cannot upload a
body at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from envelope import IdentityKeys
from gateway import Settings
from ledger.wire import builders
from tests.gateway import scenario
from tests.gateway.helpers import World

CATEGORY = "lab-results"


def _stored(settings: Settings) -> set[str]:
    root = settings.data_dir / "blobs" / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


class Site:
    """A patient, a writing doctor, a read-only clinician, and one stored body."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.cast = scenario.set_up(world)
        self.reader = world.enroll("dr-readonly", "clinician")
        world.grant(self.cast.patient, self.cast.doctor, ["read", "write"], [CATEGORY])
        world.grant(self.cast.patient, self.reader, ["read"], [CATEGORY])
        self.blob = self.upload(self.cast.doctor, b"a sealed body").json()
        self.first = self.commit(self.cast.doctor)
        assert self.first.status_code == 201, self.first.text

    def upload(self, who: IdentityKeys, body: bytes) -> Any:
        return self.world.upload_blob(who, self.cast.patient.pseudonym, CATEGORY, body)

    def commit(self, who: IdentityKeys, capsule: bytes | None = None, **fields: Any) -> Any:
        """Commit a record of the stored body with a fresh capsule (or *capsule*)."""
        capsule = os.urandom(300) if capsule is None else capsule
        values: dict[str, Any] = {
            "pseudonym": self.cast.patient.pseudonym,
            "category": CATEGORY,
            "body_sha256": self.blob["sha256"],
            "size": self.blob["size"],
            "locators": self.blob["locators"],
            "capsule_sha256": hashlib.sha256(capsule).hexdigest(),
            "content_type": "application/pdf",
            "created_at": self.world.clock(),
            "issued_at": self.world.clock(),
            **fields,
        }
        return self.world.post_record(who, builders.record(who, **values), capsule)


@pytest.fixture
def site(world: World) -> Site:
    return Site(world)


def _taken_id(site: Site) -> dict[str, Any]:
    return {"record_id": site.first.json()["record"]["record_id"]}


REFUSALS: dict[str, tuple[Callable[[Site], dict[str, Any]], bool, int, str]] = {
    # name: (fields, signed by the read-only clinician, status, code)
    "duplicate record id": (_taken_id, False, 409, "duplicate-record"),
    "no write right": (lambda site: {}, True, 403, "not-granted"),
    "unknown category": (lambda site: {"category": "dental"}, False, 422, "unknown-category"),
    "unknown pseudonym": (
        lambda site: {"pseudonym": hashlib.sha256(b"nobody").hexdigest()},
        False,
        422,
        "unknown-pseudonym",
    ),
    "future issued_at": (
        lambda site: {"issued_at": site.world.clock() + timedelta(hours=1)},
        False,
        422,
        "from-the-future",
    ),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_a_refused_record_leaves_no_capsule(site: Site, settings: Settings, refusal: str) -> None:
    fields, by_reader, status, code = REFUSALS[refusal]
    before = _stored(settings)
    capsule = os.urandom(300)
    signer = site.reader if by_reader else site.cast.doctor
    response = site.commit(signer, capsule, **fields(site))
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert _stored(settings) == before, "the refused record's capsule was stored"
    ledger = site.world.client.app.state.gateway.backends.ledger
    assert ledger.capsule(hashlib.sha256(capsule).hexdigest()) is None
    assert not ledger.capsule_referenced(hashlib.sha256(capsule).hexdigest())


def test_a_read_only_clinician_cannot_store_a_body(site: Site, settings: Settings) -> None:
    before = _stored(settings)
    body = b"an arbitrary body the reader wants kept " + os.urandom(16)
    response = site.upload(site.reader, body)
    assert response.status_code == 403, response.text
    assert "may not write" in response.json()["detail"]
    assert _stored(settings) == before
    assert hashlib.sha256(body).hexdigest() not in _stored(settings)


def test_a_body_for_another_category_or_patient_is_refused(
    site: Site, settings: Settings, world: World
) -> None:
    before = _stored(settings)
    headers = {**world.headers(site.cast.doctor), "Content-Type": "application/octet-stream"}
    other = world.register_patient("Someone Else")
    for params, status in (
        ({"pseudonym": site.cast.patient.pseudonym, "category": "radiation-dose"}, 403),
        ({"pseudonym": other.pseudonym, "category": CATEGORY}, 403),
        ({"pseudonym": hashlib.sha256(b"nobody").hexdigest(), "category": CATEGORY}, 404),
        ({"pseudonym": site.cast.patient.pseudonym, "category": "dental"}, 422),
        ({"category": CATEGORY}, 422),
    ):
        response = world.client.post("/v1/blobs", params=params, content=b"x", headers=headers)
        assert response.status_code == status, (params, response.text)
    assert _stored(settings) == before


def test_a_writer_still_uploads_and_commits(site: Site, settings: Settings) -> None:
    uploaded = site.upload(site.cast.doctor, b"another sealed body")
    assert uploaded.status_code == 201, uploaded.text
    capsule = os.urandom(300)
    site.blob = uploaded.json()
    committed = site.commit(site.cast.doctor, capsule)
    assert committed.status_code == 201, committed.text
    stored = _stored(settings)
    assert {site.blob["sha256"], hashlib.sha256(capsule).hexdigest()} <= stored


def test_a_refusal_after_the_check_takes_the_capsule_back(
    site: Site, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state changed between the rules' check and the commit: the copy is deleted."""
    ledger = site.world.client.app.state.gateway.backends.ledger
    monkeypatch.setattr(ledger, "precheck", lambda tx: None)
    before = _stored(settings)
    response = site.commit(site.reader)
    assert response.status_code == 403, response.text
    assert _stored(settings) == before


def test_a_refused_retry_keeps_the_committed_records_capsule(
    site: Site, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same capsule refused again (a duplicate) stays: a committed record names it."""
    capsule = os.urandom(300)
    first = site.commit(site.cast.doctor, capsule)
    assert first.status_code == 201, first.text
    ledger = site.world.client.app.state.gateway.backends.ledger
    monkeypatch.setattr(ledger, "precheck", lambda tx: None)
    again = site.commit(site.cast.doctor, capsule, record_id=first.json()["record"]["record_id"])
    assert again.status_code == 409, again.text
    assert hashlib.sha256(capsule).hexdigest() in _stored(settings)


def test_a_capsule_other_than_the_signed_one_is_refused(site: Site, settings: Settings) -> None:
    before = _stored(settings)
    signed, sent = hashlib.sha256(os.urandom(300)).hexdigest(), os.urandom(300)
    response = site.commit(site.cast.doctor, sent, capsule_sha256=signed)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith(":validation-failed")
    assert "capsule_sha256" in response.json()["detail"]
    assert _stored(settings) == before
    ledger = site.world.client.app.state.gateway.backends.ledger
    assert not ledger.capsule_referenced(hashlib.sha256(sent).hexdigest())
