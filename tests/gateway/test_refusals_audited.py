"""Every refused write and failed login by an enrolled identity is a denied `access` entry.

Each kind of refusal (record commit, document ingest, body upload, grant, revoke, key share,
access request, key publication, an admin's act, login) is answered as before and leaves one
`access` entry with decision `denied`, a reason in words, and the patient's pseudonym when it names
a registered one, so that the patient sees it in its audit; the entry is on
`/v1/ledger/entries` in any case. Attempts for unknown identities, malformed input and
conflicts leave nothing on the ledger. A flood of refusals writes a bounded number of
entries and is summarised; a ledger that cannot take the entry does not turn the refusal
into a 5xx.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from envelope import IdentityKeys, PatientKeys, SigningKey
from gateway import Settings, refusals as refusals_module
from ledger.errors import LedgerUnavailable
from ledger.wire import builders
from ledger.wire.encoding import canonical
from ledger.wire.rotation import request_rotation
from ledger.wire.transactions import Transaction
from tests.gateway import scenario
from tests.gateway.helpers import World, metrics_text, signed_token_request, tx_json

CATEGORY = "lab-results"


class Site:
    """A patient, a writing doctor, a read-only clinician, another patient, an auditor."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.cast = scenario.set_up(world)
        self.patient = self.cast.patient
        self.other = world.register_patient("John Roe")
        self.reader = world.enroll("dr-readonly", "clinician")
        self.auditor = world.enroll("auditor-1", "auditor")
        self.permission = world.grant(self.patient, self.cast.doctor, ["read", "write"], [CATEGORY])
        world.grant(self.patient, self.reader, ["read"], [CATEGORY])

    @property
    def pseudonym(self) -> str:
        return self.patient.pseudonym

    def post(self, path: str, who: IdentityKeys, tx: Transaction) -> Any:
        return self.world.client.post(path, json=tx_json(tx), headers=self.world.headers(who))

    def upload(self, who: IdentityKeys, pseudonym: str | None = None) -> Any:
        return self.world.upload_blob(who, pseudonym or self.pseudonym, CATEGORY, b"a sealed body")

    def commit(self, who: IdentityKeys, **fields: Any) -> Any:
        capsule = os.urandom(200)
        values: dict[str, Any] = {
            "pseudonym": self.pseudonym,
            "category": CATEGORY,
            "body_sha256": "ab" * 32,
            "size": 13,
            "locators": ["file:blobs/ab/" + "ab" * 32],
            "capsule_sha256": hashlib.sha256(capsule).hexdigest(),
            "content_type": "application/pdf",
            "issued_at": self.world.clock(),
            **fields,
        }
        return self.world.post_record(who, builders.record(who, **values), capsule)

    def grant_tx(self, signer: IdentityKeys, pseudonym: str | None = None) -> Transaction:
        now = self.world.clock()
        return builders.grant(
            signer,
            pseudonym=pseudonym or self.pseudonym,
            grantee=self.reader.id,
            rights=["read"],
            categories=[CATEGORY],
            not_before=now,
            not_after=now + timedelta(days=1),
            issued_at=now,
        )

    def denied(self, action: str) -> list[dict[str, Any]]:
        """The bodies of the denied `access` entries of *action*, from /v1/ledger/entries."""
        found, start = [], 0
        headers = self.world.headers(self.auditor)
        while True:
            page = self.world.client.get(
                "/v1/ledger/entries", params={"start": start, "limit": 500}, headers=headers
            )
            assert page.status_code == 200, page.text
            for entry in page.json()["entries"]:
                body = entry["tx"]["body"]
                if entry["tx"]["type"] == "access" and body["action"] == action:
                    assert body["decision"] == "denied"
                    found.append(body)
            start = page.json()["next_start"]
            if start is None:
                return found

    def audit(self, patient: PatientKeys | None = None) -> list[dict[str, Any]]:
        patient = patient or self.patient
        response = self.world.client.get(
            f"/v1/patients/{patient.pseudonym}/audit",
            headers=self.world.headers(patient.identity),
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def audited(self, action: str, patient: PatientKeys | None = None) -> list[dict[str, Any]]:
        return [e for e in self.audit(patient) if e["action"] == action]


@pytest.fixture
def site(world: World) -> Site:
    return Site(world)


def _no_secrets(reason: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in reason


def test_a_refused_record_commit_is_audited_for_the_patient(site: Site) -> None:
    response = site.commit(site.reader)
    assert response.status_code == 403, response.text
    [entry] = site.denied("commit_record")
    assert entry["actor"] == site.reader.id
    assert entry["pseudonym"] == site.pseudonym
    assert entry["category"] == CATEGORY
    assert entry["reason"].startswith("record commit refused: ")
    assert "write right" in entry["reason"]
    [event] = site.audited("commit_record")
    assert event["decision"] == "denied"
    assert event["actor"] == site.reader.id
    assert event["reason"] == entry["reason"]


def test_a_refused_document_ingest_is_audited(site: Site) -> None:
    response = site.world.client.post(
        "/v1/documents",
        params={"pseudonym": site.pseudonym, "category": CATEGORY, "filename": "r.pdf"},
        content=scenario.PDF,
        headers={**site.world.headers(site.reader), "Content-Type": "application/pdf"},
    )
    assert response.status_code == 403, response.text
    [entry] = site.denied("ingest_document")
    assert (entry["actor"], entry["pseudonym"]) == (site.reader.id, site.pseudonym)
    assert "document ingest refused" in entry["reason"]
    assert "write" in entry["reason"]
    assert site.audited("ingest_document")


def test_a_refused_body_upload_is_audited_for_want_of_right_or_of_role(site: Site) -> None:
    assert site.upload(site.reader).status_code == 403
    assert site.upload(site.other.identity).status_code == 403  # a patient is no uploader
    entries = site.denied("upload_body")
    assert [e["actor"] for e in entries] == [site.reader.id, site.other.identity.id]
    assert {e["pseudonym"] for e in entries} == {site.pseudonym}
    assert "clinician or system" in entries[1]["reason"]
    assert len(site.audited("upload_body")) == 2


def test_a_refused_grant_names_the_patient_it_was_for(site: Site) -> None:
    # Another patient tries to grant on this patient's pseudonym.
    response = site.post("/v1/permissions", site.other.identity, site.grant_tx(site.other.identity))
    assert response.status_code == 403, response.text
    [entry] = site.denied("grant")
    assert (entry["actor"], entry["pseudonym"]) == (site.other.identity.id, site.pseudonym)
    assert "grant refused" in entry["reason"]
    assert site.audited("grant")
    assert not site.audited("grant", site.other)


def test_a_transaction_of_another_signer_is_audited_against_the_caller(site: Site) -> None:
    # A clinician replays the patient's own signed grant: refused, and on the ledger.
    tx = site.grant_tx(site.patient.identity)
    response = site.post("/v1/permissions", site.cast.doctor, tx)
    assert response.status_code == 403, response.text
    [entry] = site.denied("grant")
    assert entry["actor"] == site.cast.doctor.id
    assert entry["pseudonym"] == site.pseudonym
    _no_secrets(entry["reason"], tx.to_json()["signature"])


def test_a_forged_signature_with_a_valid_token_is_audited(site: Site) -> None:
    tx = site.grant_tx(site.patient.identity)
    forged = Transaction(
        tx.type,
        tx.body,
        tx.signer,
        SigningKey.generate().sign_bytes(canonical(tx.signed_payload())),
    )
    response = site.post("/v1/permissions", site.patient.identity, forged)
    assert response.status_code == 422
    assert response.json()["code"] == "bad-signature"
    [entry] = site.denied("grant")
    assert "signature does not verify" in entry["reason"]
    _no_secrets(entry["reason"], forged.to_json()["signature"])


def test_a_refused_revoke_is_audited(site: Site) -> None:
    tx = builders.revoke(
        site.other.identity,
        pseudonym=site.pseudonym,
        permission_id=site.permission,
        issued_at=site.world.clock(),
    )
    response = site.post(f"/v1/permissions/{site.permission}/revoke", site.other.identity, tx)
    assert response.status_code == 403, response.text
    [entry] = site.denied("revoke")
    assert (entry["actor"], entry["pseudonym"]) == (site.other.identity.id, site.pseudonym)
    assert "revoke refused" in entry["reason"]
    assert site.audited("revoke")


def test_a_refused_key_share_is_audited(site: Site) -> None:
    tx = builders.key_share(
        site.other.identity,
        pseudonym=site.pseudonym,
        grantee=site.reader.id,
        sealed_key=os.urandom(120),
        scope=[("lab-results", "2026-01")],
        issued_at=site.world.clock(),
    )
    response = site.post("/v1/key-shares", site.other.identity, tx)
    assert response.status_code == 403, response.text
    [entry] = site.denied("deposit_key_share")
    assert (entry["actor"], entry["pseudonym"]) == (site.other.identity.id, site.pseudonym)
    assert "key share deposit refused" in entry["reason"]
    assert site.audited("deposit_key_share")


def test_a_refused_key_publication_is_audited_for_the_patient(site: Site) -> None:
    # Another patient publishes record keys on this patient's pseudonym.
    tx = builders.publish_keys(
        site.other.identity,
        pseudonym=site.pseudonym,
        keys=[(CATEGORY, "2031-01", os.urandom(1216))],
        issued_at=site.world.clock(),
    )
    response = site.post(f"/v1/patients/{site.pseudonym}/keys", site.other.identity, tx)
    assert response.status_code == 403, response.text
    [entry] = site.denied("publish_keys")
    assert (entry["actor"], entry["pseudonym"]) == (site.other.identity.id, site.pseudonym)
    assert "key publication refused" in entry["reason"]
    assert site.audited("publish_keys")


def test_a_refused_access_request_is_audited(site: Site) -> None:
    tx = builders.access_request(
        site.other.identity,
        pseudonym=site.pseudonym,
        rights=["read"],
        categories="all",
        reason="curious",
        issued_at=site.world.clock(),
    )
    response = site.post("/v1/access-requests", site.other.identity, tx)
    assert response.status_code == 403, response.text
    [entry] = site.denied("request_access")
    assert entry["actor"] == site.other.identity.id
    assert entry["pseudonym"] == site.pseudonym


def test_an_unregistered_pseudonym_is_recorded_without_a_patient(site: Site) -> None:
    # Signed by someone else (so refused as such) and naming no registered patient.
    stranger = "cd" * 32
    tx = site.grant_tx(site.patient.identity, pseudonym=stranger)
    assert site.post("/v1/permissions", site.cast.doctor, tx).status_code == 403
    [entry] = site.denied("grant")
    assert entry["actor"] == site.cast.doctor.id
    assert "pseudonym" not in entry
    assert "category" not in entry


def test_bad_input_and_conflicts_are_not_refusals(site: Site) -> None:
    before = len(site.denied("revoke")) + len(site.denied("grant"))
    site.world.revoke(site.patient, site.permission)
    again = builders.revoke(
        site.patient.identity,
        pseudonym=site.pseudonym,
        permission_id=site.permission,
        issued_at=site.world.clock(),
    )
    response = site.post(f"/v1/permissions/{site.permission}/revoke", site.patient.identity, again)
    assert response.status_code == 409
    empty = site.grant_tx(site.patient.identity)
    bad = builders.sign(
        site.patient.identity,
        "grant",
        {**{k: v for k, v in empty.body.items() if k not in ("tx_id", "issued_at")}, "x": 1},
        issued_at=site.world.clock(),
    )
    assert site.post("/v1/permissions", site.patient.identity, bad).status_code == 422
    assert len(site.denied("revoke")) + len(site.denied("grant")) == before


# --- logins ---------------------------------------------------------------------------------


def _challenge(world: World, identity_id: str) -> dict[str, Any]:
    response = world.client.post("/v1/auth/challenge", json={"identity_id": identity_id})
    assert response.status_code == 200, response.text
    challenge: dict[str, Any] = response.json()
    return challenge


def _bad_login(world: World, keys: IdentityKeys) -> Any:
    """A login as *keys*' identity, signed with some other key."""
    impostor = IdentityKeys.generate(keys.id, keys.role)
    request = signed_token_request(impostor, _challenge(world, keys.id))
    response = world.client.post("/v1/auth/token", json=request)
    assert response.status_code == 401, response.text
    return request


def test_a_failed_login_of_a_clinician_is_on_the_ledger_without_a_patient(site: Site) -> None:
    request = _bad_login(site.world, site.reader)
    [entry] = site.denied("login")
    assert entry["actor"] == site.reader.id
    assert "pseudonym" not in entry
    assert "login refused" in entry["reason"]
    assert "signature" in entry["reason"]
    _no_secrets(entry["reason"], request["signature"], request["challenge"])


def test_a_failed_login_of_a_patient_is_in_its_audit(site: Site) -> None:
    _bad_login(site.world, site.patient.identity)
    [entry] = site.denied("login")
    assert entry["pseudonym"] == site.pseudonym
    [event] = site.audited("login")
    assert event["actor"] == site.patient.identity.id
    assert event["decision"] == "denied"


def test_an_expired_challenge_and_a_suspended_identity_are_audited(site: Site) -> None:
    world = site.world
    challenge = _challenge(world, site.reader.id)
    world.clock.advance(timedelta(minutes=5))
    response = world.client.post(
        "/v1/auth/token", json=signed_token_request(site.reader, challenge)
    )
    assert response.status_code == 401
    world.suspend(site.cast.system)
    response = world.client.post(
        "/v1/auth/token",
        json=signed_token_request(site.cast.system, _challenge(world, site.cast.system.id)),
    )
    assert response.status_code == 403
    entries = site.denied("login")
    assert [e["actor"] for e in entries] == [site.reader.id, site.cast.system.id]
    assert "ask for a new challenge" in entries[0]["reason"]
    assert "suspended" in entries[1]["reason"]


def test_a_login_as_an_unknown_identity_is_counted_never_recorded(site: Site) -> None:
    _bad_login(site.world, IdentityKeys.generate("nobody-here", "clinician"))
    assert site.denied("login") == []
    metrics = metrics_text(site.world.client)
    assert 'ehrgate_refusals_unrecorded_total{action="login",why="unknown-identity"} 1.0' in (
        metrics
    )


# --- limits and outages ---------------------------------------------------------------------


def _unrecorded(world: World, action: str, why: str) -> float:
    pattern = rf'ehrgate_refusals_unrecorded_total{{action="{action}",why="{why}"}} (\S+)'
    found = re.search(pattern, metrics_text(world.client))
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", refusal_audit_rate=2, refusal_audit_burst=3)


def test_a_flood_of_refusals_writes_a_bounded_number_of_entries(
    site: Site, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    flood = 40
    answers = [site.commit(site.reader).status_code for _ in range(3)]
    # Once the bucket is empty a refusal does not touch the ledger at all: it is answered
    # at once, however busy (or broken) the ledger is.
    ledger = app.state.gateway.backends.ledger
    submitted: list[object] = []

    def no_ledger(*args: object, **kwargs: object) -> None:
        submitted.append(args)
        raise AssertionError("a rate-limited refusal was submitted to the ledger")

    with monkeypatch.context() as patched:
        patched.setattr(ledger, "submit_future", no_ledger)
        answers += [site.commit(site.reader).status_code for _ in range(flood - 3)]
    assert submitted == []
    assert answers == [403] * flood
    assert len(site.denied("commit_record")) == 3
    assert _unrecorded(site.world, "commit_record", "rate-limited") == flood - 3
    # Each kind of act has a bucket of its own.
    assert site.upload(site.reader).status_code == 403
    assert len(site.denied("upload_body")) == 1
    # A minute later a token is back; the next entry says how many were left out.
    site.world.clock.advance(timedelta(seconds=30))
    assert site.commit(site.reader).status_code == 403
    entries = site.denied("commit_record")
    assert len(entries) == 4
    assert (
        f"({flood - 3} more refused commit_record attempt(s) by dr-readonly"
        in (entries[-1]["reason"])
    )
    site.world.clock.advance(timedelta(seconds=30))
    assert site.commit(site.reader).status_code == 403
    entries = site.denied("commit_record")
    assert len(entries) == 5
    assert "more refused" not in entries[-1]["reason"]


def test_a_ledger_outage_does_not_turn_a_refusal_into_a_5xx(
    site: Site, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = app.state.gateway.backends.ledger
    site.world.headers(site.other.identity)  # log in before the ledger fails

    def unavailable(*args: object, **kwargs: object) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_exception(LedgerUnavailable("the database is down"))
        return future

    def hanging(*args: object, **kwargs: object) -> concurrent.futures.Future[Any]:
        return concurrent.futures.Future()  # never resolves

    with monkeypatch.context() as patched:
        patched.setattr(ledger, "submit_future", unavailable)
        assert site.upload(site.other.identity).status_code == 403
        patched.setattr(ledger, "submit_future", hanging)
        patched.setattr(refusals_module, "_WAIT_SECONDS", 0.2)
        started = time.monotonic()
        assert site.upload(site.reader).status_code == 403
        assert time.monotonic() - started < 3.0
    assert _unrecorded(site.world, "upload_body", "ledger-unavailable") == 2
    assert site.denied("upload_body") == []


def test_the_refusal_limits_are_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    defaults = Settings(data_dir=tmp_path)
    assert (defaults.refusal_audit_rate, defaults.refusal_audit_burst) == (6, 3)
    assert defaults.refusal_audit_global_rate == 600
    monkeypatch.setenv("EHRGATE_REFUSAL_AUDIT_RATE", "12")
    monkeypatch.setenv("EHRGATE_REFUSAL_AUDIT_BURST", "1")
    chosen = Settings(data_dir=tmp_path)
    assert (chosen.refusal_audit_rate, chosen.refusal_audit_burst) == (12, 1)
    monkeypatch.setenv("EHRGATE_REFUSAL_AUDIT_BURST", "0")
    with pytest.raises(ValueError, match="refusal_audit_burst"):
        Settings(data_dir=tmp_path)


def test_the_gateway_wide_limit_caps_refusals_of_many_identities(
    tmp_path: Path,
) -> None:
    from gateway.metrics import GatewayMetrics
    from gateway.refusal_limits import RefusalLimiter
    from tests.gateway.helpers import ManualClock

    clock = ManualClock()
    limiter = RefusalLimiter(
        per_minute=6, burst=3, global_per_minute=5, clock=clock, metrics=GatewayMetrics()
    )
    admitted = [limiter.admit(f"id-{n}", "login", clock()) for n in range(20)]
    assert admitted.count("") == 5
    assert admitted.count(None) == 15


def test_refused_admin_acts_are_audited(site: Site) -> None:
    """Enrolling, suspending, reinstating and rotating keys by a non-admin are refused and
    each leaves a denied `access` entry naming the caller and no patient."""
    world, doctor = site.world, site.cast.doctor
    newcomer = IdentityKeys.generate("nurse-new", "clinician")
    enroll = builders.enroll(doctor, newcomer.public(), issued_at=world.clock())
    assert site.post("/v1/identities", doctor, enroll).status_code == 403
    suspend = builders.suspend(doctor, site.reader.id, "x", issued_at=world.clock())
    assert site.post(f"/v1/identities/{site.reader.id}/suspend", doctor, suspend).status_code == 403
    world.suspend(site.auditor)
    reinstate = builders.reinstate(doctor, site.auditor.id, "x", issued_at=world.clock())
    path = f"/v1/identities/{site.auditor.id}/reinstate"
    assert site.post(path, doctor, reinstate).status_code == 403
    request = request_rotation(site.reader, IdentityKeys.generate(site.reader.id, "clinician"))
    rotate = builders.rotate_keys(doctor, request, issued_at=world.clock())
    path = f"/v1/identities/{site.reader.id}/rotate-keys"
    assert site.post(path, doctor, rotate).status_code == 403
    reinstated = builders.reinstate(world.admin, site.auditor.id, "audit", issued_at=world.clock())
    path = f"/v1/identities/{site.auditor.id}/reinstate"
    assert site.post(path, world.admin, reinstated).status_code == 201
    for action, words in (
        ("enroll", "enrollment refused"),
        ("suspend", "suspension refused"),
        ("reinstate", "reinstatement refused"),
        ("rotate_keys", "key rotation refused"),
    ):
        [entry] = site.denied(action)
        assert entry["actor"] == doctor.id
        assert "pseudonym" not in entry
        assert entry["reason"].startswith(words), entry["reason"]
    # An admin's own refused act is audited too (it may not suspend itself).
    itself = builders.suspend(world.admin, world.admin.id, "x", issued_at=world.clock())
    assert (
        site.post(f"/v1/identities/{world.admin.id}/suspend", world.admin, itself).status_code
        == 403
    )
    assert [e["actor"] for e in site.denied("suspend")] == [doctor.id, world.admin.id]
    # A conflict (reinstating an active identity) is not a refusal of who the caller is.
    again = builders.reinstate(world.admin, site.auditor.id, "again", issued_at=world.clock())
    assert site.post(path, world.admin, again).status_code == 409
    assert len(site.denied("reinstate")) == 1
