"""The SDK against a live gateway: each call's success path and its typed refusals."""

from __future__ import annotations

import hashlib
import io
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import ehrgate
from ehrgate import (
    AuthenticationFailed,
    Client,
    Conflict,
    Denied,
    NotFound,
    RecordExists,
    RuleViolation,
    Suspended,
    Unavailable,
    UsageError,
)
from ehrgate.client import SPOOL_LIMIT
from ehrgate.embedded import free_port
from ehrgate.pdf import text_pdf
from ehrgate.trust import LedgerPins
from envelope import IdentityKeys
from tests.client.live import Cast, live_cast, new_patient

PDF = text_pdf(["Haemoglobin 128 g/L"], title="Lab report")


def test_public_names_are_importable() -> None:
    for name in ehrgate.__all__:
        assert getattr(ehrgate, name) is not None
    with pytest.raises(AttributeError):
        _ = ehrgate.NoSuchThing


def test_upload_and_fetch_round_trip(cast: Cast, tmp_path: Path) -> None:
    source = tmp_path / "cbc.pdf"
    source.write_bytes(PDF)
    with cast.client(cast.system) as system:
        uploaded = system.upload(source, pseudonym=cast.pseudonym, category="lab-results")
    assert uploaded.filename == "cbc.pdf"
    assert uploaded.record.content_type == "application/pdf"
    assert uploaded.record.uploader == cast.system.id
    out = tmp_path / "fetched"
    out.mkdir()
    with cast.client(cast.doctor) as doctor:
        assert uploaded.record in doctor.records(cast.pseudonym, "lab-results")
        fetched = doctor.fetch(uploaded.record.record_id, out)
    assert fetched.path == out / "cbc.pdf"
    assert fetched.path.read_bytes() == PDF
    assert fetched.signer_id == cast.system.id
    assert fetched.receipt.index == uploaded.record.entry_index


def test_a_stream_larger_than_the_spool_limit_streams_both_ways(cast: Cast, tmp_path: Path) -> None:
    data = b"%PDF-1.7\n" + os.urandom(SPOOL_LIMIT + 3 * 65536 + 17)
    with cast.client(cast.system) as system:
        uploaded = system.upload(
            io.BytesIO(data), pseudonym=cast.pseudonym, category="radiation-dose", filename="d.pdf"
        )
    assert uploaded.plaintext_size == len(data)
    with cast.client(cast.doctor) as doctor:
        fetched = doctor.fetch(uploaded.record.record_id, tmp_path / "d.pdf")
    assert hashlib.sha256(fetched.path.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_an_empty_file_uploads_and_fetches(cast: Cast) -> None:
    with cast.client(cast.system) as system:
        uploaded = system.upload(io.BytesIO(b""), pseudonym=cast.pseudonym, category="lab-results")
    with cast.client(cast.doctor) as doctor:
        _, plaintext = doctor.fetch_bytes(uploaded.record.record_id)
    assert plaintext == b""


def test_a_chosen_record_id_is_used_and_cannot_be_taken_twice(cast: Cast) -> None:
    record_id = "import-" + os.urandom(8).hex()
    with cast.client(cast.system) as system:
        first = system.upload(
            io.BytesIO(PDF), pseudonym=cast.pseudonym, category="lab-results", record_id=record_id
        )
        assert first.record.record_id == record_id
        with pytest.raises(RecordExists) as refused:
            system.upload(
                io.BytesIO(PDF),
                pseudonym=cast.pseudonym,
                category="lab-results",
                record_id=record_id,
            )
    assert refused.value.status == 409
    assert refused.value.code == "duplicate-record"


def test_a_document_date_becomes_the_records_creation_time(cast: Cast) -> None:
    with cast.client(cast.patient) as patient:  # a past month: its keys are published now
        patient.publish_keys(0, start="2024-03")
    with cast.client(cast.system) as system:
        uploaded = system.upload(
            io.BytesIO(PDF),
            pseudonym=cast.pseudonym,
            category="lab-results",
            created_at="2024-03-01T00:00:00Z",
        )
    assert uploaded.record.created_at == "2024-03-01T00:00:00.000000Z"


def test_an_unknown_category_is_a_rule_violation(cast: Cast) -> None:
    with cast.client(cast.system) as system, pytest.raises(RuleViolation) as refused:
        system.upload(io.BytesIO(PDF), pseudonym=cast.pseudonym, category="billing")
    assert refused.value.code == "unknown-category"


def test_a_write_only_system_may_not_read(cast: Cast) -> None:
    with cast.client(cast.system) as system:
        uploaded = system.upload(io.BytesIO(PDF), pseudonym=cast.pseudonym, category="lab-results")
        with pytest.raises(Denied):
            system.fetch_bytes(uploaded.record.record_id)


def test_an_unknown_record_is_not_found(cast: Cast) -> None:
    with cast.client(cast.doctor) as doctor, pytest.raises(NotFound):
        doctor.fetch_bytes("no-such-record")


def test_an_unregistered_patient_is_not_found(cast: Cast) -> None:
    with cast.client(cast.system) as system, pytest.raises(NotFound):
        system.upload(io.BytesIO(PDF), pseudonym="0" * 64, category="lab-results")


def test_the_patient_reads_its_own_records_with_its_own_key(cast: Cast) -> None:
    with cast.client(cast.system) as system:
        uploaded = system.upload(io.BytesIO(PDF), pseudonym=cast.pseudonym, category="lab-results")
    with cast.client(cast.patient) as patient:
        _, plaintext = patient.fetch_bytes(uploaded.record.record_id)
    assert plaintext == PDF


def test_grant_list_and_revoke(cast: Cast) -> None:
    nurse = IdentityKeys.generate("nurse-" + os.urandom(4).hex(), "clinician")
    with cast.client(cast.admin) as admin:
        admin.enroll(nurse.public())
    until = datetime.now(UTC) + timedelta(hours=1)
    with cast.client(cast.patient) as patient:
        granted, receipt = patient.grant(
            nurse.id, rights=["read"], categories=["radiation-dose"], not_after=until
        )
        assert granted.grantee == nurse.id
        assert not granted.revoked
        assert granted.categories == ("radiation-dose",)
        assert receipt.index > 0
        assert granted in patient.permissions()
        revoked, _ = patient.revoke(granted.permission_id)
        assert revoked.revoked
        with pytest.raises(Conflict):
            patient.revoke(granted.permission_id)
    with cast.client(nurse) as client:
        assert [p.permission_id for p in client.permissions(cast.pseudonym)] == [
            granted.permission_id
        ]


def test_a_share_right_needs_a_study(cast: Cast) -> None:
    with cast.client(cast.patient) as patient, pytest.raises(RuleViolation, match="study"):
        patient.grant(
            cast.doctor.id,
            rights=["share"],
            categories="all",
            not_after=datetime.now(UTC) + timedelta(days=1),
        )


def test_only_a_patient_grants(cast: Cast) -> None:
    with cast.client(cast.doctor) as doctor, pytest.raises(UsageError, match="only a patient"):
        doctor.grant("x", rights=["read"], categories="all", not_after="2030-01-01T00:00:00Z")


def test_registering_twice_is_a_conflict(cast: Cast) -> None:
    with cast.client(cast.patient) as patient, pytest.raises(Conflict):
        patient.register_patient()


def test_a_new_patient_registers_without_logging_in(cast: Cast) -> None:
    patient = new_patient("Jo Bloggs")
    with cast.client(patient) as client:
        registered, receipt = client.register_patient()
        assert registered.pseudonym == patient.pseudonym
        assert client.patient(patient.pseudonym) == registered
        assert [e for e in client.audit() if e.actor != patient.pseudonym] == []
    assert receipt.tx_hash


def test_access_requests_reach_the_patient(cast: Cast) -> None:
    with cast.client(cast.doctor) as doctor:
        request, _ = doctor.request_access(
            cast.pseudonym, rights=["read"], categories=["history-physical"], reason="follow-up"
        )
    with cast.client(cast.patient) as patient:
        assert request in patient.access_requests()
    with cast.client(cast.doctor) as doctor, pytest.raises(Denied):
        doctor.access_requests(cast.pseudonym)


def test_the_audit_shows_reads_allowed_and_denied(cast: Cast) -> None:
    with cast.client(cast.system) as system:
        uploaded = system.upload(io.BytesIO(PDF), pseudonym=cast.pseudonym, category="lab-results")
        with pytest.raises(Denied):
            system.fetch_bytes(uploaded.record.record_id)
    with cast.client(cast.doctor) as doctor:
        doctor.fetch_bytes(uploaded.record.record_id)
    with cast.client(cast.patient) as patient:
        events = [
            (e.actor, e.action, e.decision)
            for e in patient.audit()
            if e.record_id == uploaded.record.record_id
        ]
    # the SDK opens a record in one request, audited as a body read
    assert (cast.system.id, "body", "denied") in events
    assert (cast.doctor.id, "body", "allowed") in events


def test_enroll_and_suspend_by_an_admin_only(cast: Cast) -> None:
    temp = IdentityKeys.generate("temp-" + os.urandom(4).hex(), "clinician")
    with cast.client(cast.doctor) as doctor, pytest.raises(Denied):
        doctor.enroll(temp.public())
    with cast.client(cast.admin) as admin:
        admin.enroll(temp.public())
        with cast.client(temp) as client:
            assert client.whoami().id == temp.id
            admin.suspend(temp.id, "left the hospital")
            with pytest.raises(Suspended):  # the token it holds stops working at once
                client.whoami()
        assert admin.identity_of(temp.id).suspended


def test_an_unknown_identity_cannot_log_in(cast: Cast) -> None:
    stranger = IdentityKeys.generate("stranger", "clinician")
    with cast.client(stranger) as client, pytest.raises(AuthenticationFailed):
        client.whoami()


def test_an_impostor_key_cannot_log_in(cast: Cast) -> None:
    impostor = IdentityKeys.generate(cast.doctor.id, "clinician")
    with cast.client(impostor) as client, pytest.raises(AuthenticationFailed):
        client.whoami()


def test_a_forgotten_token_is_renewed_once(cast: Cast) -> None:
    with cast.client(cast.doctor) as doctor:
        doctor.whoami()
        token = doctor._connection.token()
        # The gateway forgets tokens when it restarts; an unknown token looks the same.
        doctor._connection._token = type(token)("egt_forgotten", token.renew_at, token.generation)
        assert doctor.whoami().id == cast.doctor.id
        assert doctor._connection.token().value not in ("egt_forgotten", token.value)


def test_an_expiring_token_is_renewed_before_it_expires(tmp_path: Path) -> None:
    with live_cast(tmp_path, token_lifetime=2) as short, short.client(short.doctor) as doctor:
        first = doctor._connection.token()
        time.sleep(1.8)  # renewal is due at three quarters of the lifetime
        assert doctor.whoami().id == short.doctor.id
        assert doctor._connection.token().generation > first.generation


def test_ledger_verification_from_the_gateway(cast: Cast) -> None:
    with cast.client(cast.auditor) as auditor:
        report = auditor.verify_ledger()
        assert report.ok, report.summary()
        head = auditor.ledger_head()
    assert head.tree_head is not None
    assert report.entries >= head.tree_head.tree_size
    with cast.client(cast.doctor) as doctor, pytest.raises(Denied):
        doctor.verify_ledger()


def test_the_ledger_key_is_pinned_to_a_file(cast: Cast, tmp_path: Path) -> None:
    pins_file = tmp_path / "known.json"
    with Client(cast.url, cast.doctor, pins=LedgerPins(pins_file)) as doctor:
        head = doctor.ledger_head()
    assert head.ledger_public_key in pins_file.read_text()
    assert LedgerPins(pins_file).pinned(cast.url) is not None


def test_a_given_ledger_key_must_match(cast: Cast) -> None:
    with cast.client(cast.auditor) as auditor:
        key = auditor.ledger_head().ledger_public_key
    with Client(cast.url, cast.auditor, ledger_key=key) as trusting:
        assert trusting.verify_ledger().ok
    other = IdentityKeys.generate("x", "admin").public().to_json()["signing_public_key"]
    wrong = Client(cast.url, cast.auditor, ledger_key=other)
    with wrong, pytest.raises(ehrgate.VerificationFailed):
        wrong.ledger_head()


def test_a_gateway_that_is_down_is_unavailable_quickly() -> None:
    started = time.monotonic()
    client = Client(f"http://127.0.0.1:{free_port()}", IdentityKeys.generate("a", "admin"))
    with client, pytest.raises(Unavailable, match="cannot connect"):
        client.whoami()
    assert time.monotonic() - started < 10


def test_a_missing_file_is_a_usage_error(cast: Cast, tmp_path: Path) -> None:
    with cast.client(cast.system) as system, pytest.raises(UsageError, match="no file"):
        system.upload(tmp_path / "nope.pdf", pseudonym=cast.pseudonym, category="lab-results")


def test_fetch_does_not_replace_an_existing_file(cast: Cast, tmp_path: Path) -> None:
    with cast.client(cast.system) as system:
        uploaded = system.upload(io.BytesIO(PDF), pseudonym=cast.pseudonym, category="lab-results")
    target = tmp_path / "report.pdf"
    target.write_bytes(b"mine")
    with cast.client(cast.doctor) as doctor:
        with pytest.raises(UsageError, match="already exists"):
            doctor.fetch(uploaded.record.record_id, target)
        assert target.read_bytes() == b"mine"
        doctor.fetch(uploaded.record.record_id, target, overwrite=True)
    assert target.read_bytes() == PDF
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]


@pytest.mark.parametrize("name", [".bashrc", " padded.pdf"])
def test_a_surprising_file_name_is_not_used_in_a_directory(
    cast: Cast, tmp_path: Path, name: str
) -> None:
    with cast.client(cast.system) as system:
        uploaded = system.upload(
            io.BytesIO(PDF), pseudonym=cast.pseudonym, category="lab-results", filename=name
        )
    with cast.client(cast.doctor) as doctor:
        fetched = doctor.fetch(uploaded.record.record_id, tmp_path)
    assert fetched.path == tmp_path / f"record-{uploaded.record.record_id}"
    assert fetched.path.read_bytes() == PDF
