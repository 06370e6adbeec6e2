"""Capsules: each recipient opens, nobody else does, every changed byte is refused."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest

from envelope import (
    EnvelopeError,
    HybridPrivateKey,
    InvalidEnvelope,
    InvalidSignature,
    PatientKeys,
    Sealer,
    SealResult,
    SigningKey,
    canonical_json,
    capsule_sha256,
    open_body,
    open_capsule,
    seal,
    verify_capsule_signature,
)
from envelope.capsule import build_capsule, encrypt_metadata
from tests.envelope.conftest import CREATED_AT, UII, Sealed, pattern


def open_as_patient(sealed: Sealed, capsule: bytes | None = None) -> object:
    return open_capsule(
        sealed.result.capsule if capsule is None else capsule,
        sealed.patient.patient_key.record_private_key(),
        sealed.patient.pseudonym,
    )


def test_patient_and_doctor_both_open(sealed: Sealed) -> None:
    by_patient = open_capsule(
        sealed.result.capsule,
        sealed.patient.patient_key.record_private_key(),
        sealed.patient.pseudonym,
    )
    by_doctor = open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    assert by_patient == by_doctor
    assert b"".join(open_body([sealed.body], by_doctor)) == sealed.plaintext


def test_metadata_is_what_was_sealed(sealed: Sealed) -> None:
    opened = open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    assert opened.filename == "report.pdf"
    assert opened.content_type == "application/pdf"
    assert opened.plaintext_sha256 == hashlib.sha256(sealed.plaintext).hexdigest()
    assert opened.plaintext_size == len(sealed.plaintext)
    assert (
        opened.body_sha256 == hashlib.sha256(sealed.body).hexdigest() == sealed.result.body_sha256
    )
    assert opened.body_size == len(sealed.body)
    assert (opened.uploader_id, opened.signer_id) == (sealed.uploader.id, sealed.uploader.id)
    assert (opened.pseudonym, opened.category, opened.created_at) == (
        sealed.patient.pseudonym,
        "oncology",
        CREATED_AT,
    )
    assert "data_key" not in repr(opened)


def test_capsule_is_canonical_json_and_hashed(sealed: Sealed) -> None:
    document = json.loads(sealed.result.capsule)
    assert canonical_json(document) == sealed.result.capsule
    assert document["format"] == "ehrgate-capsule"
    assert document["version"] == 1
    assert [entry["id"] for entry in document["recipients"]] == [
        sealed.patient.pseudonym,
        sealed.doctor.id,
    ]
    assert sealed.result.capsule_sha256 == capsule_sha256(sealed.result.capsule)
    assert (
        capsule_sha256(sealed.result.capsule) == hashlib.sha256(sealed.result.capsule).hexdigest()
    )


def test_wrong_recipient_id_fails(sealed: Sealed) -> None:
    with pytest.raises(InvalidEnvelope):
        open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, "dr-other")


def test_recipient_id_is_bound_to_its_wrapped_key(sealed: Sealed) -> None:
    """The doctor's key under the patient's entry (or the reverse) does not open."""
    with pytest.raises(InvalidEnvelope):
        open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.patient.pseudonym)
    document = json.loads(sealed.result.capsule)
    first, second = document["recipients"]
    first["wrapped_key"], second["wrapped_key"] = second["wrapped_key"], first["wrapped_key"]
    with pytest.raises(InvalidEnvelope):
        open_capsule(canonical_json(document), sealed.doctor.encryption_key, sealed.doctor.id)


def test_someone_elses_key_fails(sealed: Sealed) -> None:
    with pytest.raises(InvalidEnvelope):
        open_capsule(sealed.result.capsule, HybridPrivateKey.generate(), sealed.doctor.id)
    other_patient = PatientKeys.generate(UII)
    with pytest.raises(InvalidEnvelope):
        open_capsule(
            sealed.result.capsule,
            other_patient.patient_key.record_private_key(),
            sealed.patient.pseudonym,
        )


def test_every_changed_capsule_byte_fails(sealed: Sealed) -> None:
    capsule = sealed.result.capsule
    for position in range(len(capsule)):
        changed = bytearray(capsule)
        changed[position] ^= 0x01
        with pytest.raises(InvalidEnvelope):
            open_capsule(bytes(changed), sealed.doctor.encryption_key, sealed.doctor.id)


@pytest.mark.parametrize(
    "change",
    [
        "reformatted",
        "duplicate recipient",
        "no recipients",
        "version 2",
        "extra field",
        "truncated",
        "meta from another capsule",
        "meta too short",
        "not json",
        "not utf-8",
    ],
)
def test_malformed_capsules_fail(sealed: Sealed, change: str) -> None:
    document = json.loads(sealed.result.capsule)
    if change == "reformatted":
        capsule = json.dumps(document, indent=1).encode()
    elif change == "duplicate recipient":
        document["recipients"].append(document["recipients"][1])
        capsule = canonical_json(document)
    elif change == "no recipients":
        document["recipients"] = []
        capsule = canonical_json(document)
    elif change == "version 2":
        document["version"] = 2
        capsule = canonical_json(document)
    elif change == "extra field":
        document["note"] = "x"
        capsule = canonical_json(document)
    elif change == "truncated":
        capsule = sealed.result.capsule[:-1]
    elif change == "meta from another capsule":
        other = capsule_of_another_file(sealed)
        document["meta"] = json.loads(other)["meta"]
        capsule = canonical_json(document)
    elif change == "meta too short":
        document["meta"] = base64.b64encode(bytes(20)).decode()
        capsule = canonical_json(document)
    elif change == "not json":
        capsule = b"\x00" * 100
    else:
        capsule = b"\xff" + sealed.result.capsule
    with pytest.raises(InvalidEnvelope):
        open_capsule(capsule, sealed.doctor.encryption_key, sealed.doctor.id)


def capsule_of_another_file(sealed: Sealed) -> bytes:
    return seal_to(sealed, b"another file").capsule


def seal_to(sealed: Sealed, plaintext: bytes, **overrides: object) -> SealResult:
    arguments: dict[str, object] = {
        "recipients": [
            (sealed.patient.pseudonym, sealed.patient.patient_key.record_public_key()),
            (sealed.doctor.id, sealed.doctor.encryption_key.public_key()),
        ],
        "filename": "report.pdf",
        "content_type": "application/pdf",
        "pseudonym": sealed.patient.pseudonym,
        "category": "oncology",
        "created_at": CREATED_AT,
        "uploader_id": sealed.uploader.id,
        "signer": sealed.uploader,
    }
    arguments.update(overrides)
    return seal(io.BytesIO(plaintext), io.BytesIO(), **arguments)  # type: ignore[arg-type]


def test_body_of_another_file_is_refused(sealed: Sealed) -> None:
    opened = open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    other_body = io.BytesIO()
    seal(
        io.BytesIO(sealed.plaintext),
        other_body,
        recipients=[(sealed.patient.pseudonym, sealed.patient.patient_key.record_public_key())],
        filename="x.pdf",
        content_type="application/pdf",
        pseudonym=sealed.patient.pseudonym,
        category="oncology",
        created_at=CREATED_AT,
        uploader_id="x",
        signer=sealed.uploader,
    )
    with pytest.raises(InvalidEnvelope):
        b"".join(open_body([other_body.getvalue()], opened))


# --- signatures ----------------------------------------------------------------------


def test_signature_verifies_for_the_ledger_facts(sealed: Sealed) -> None:
    opened = open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    verify_capsule_signature(
        opened,
        sealed.uploader.public().verify_key,
        pseudonym=sealed.patient.pseudonym,
        category="oncology",
        created_at=CREATED_AT,
    )


@pytest.mark.parametrize("fact", ["pseudonym", "category", "created_at", "signer"])
def test_signature_fails_for_other_facts_or_signer(sealed: Sealed, fact: str) -> None:
    opened = open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    facts = {
        "pseudonym": sealed.patient.pseudonym,
        "category": "oncology",
        "created_at": CREATED_AT,
    }
    key = sealed.uploader.public().verify_key
    if fact == "signer":
        key = sealed.doctor.public().verify_key
    else:
        facts[fact] = {
            "pseudonym": "0" * 64,
            "category": "cardiology",
            "created_at": "2026-02-01T00:00:00Z",
        }[fact]
    with pytest.raises(InvalidSignature):
        verify_capsule_signature(opened, key, **facts)


def test_signer_may_differ_from_uploader(sealed: Sealed) -> None:
    gateway = SigningKey.generate()
    result = seal_to(sealed, b"ingested", signer=gateway, signer_id="gateway", uploader_id="his-1")
    opened = open_capsule(result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    assert (opened.uploader_id, opened.signer_id) == ("his-1", "gateway")
    verify_capsule_signature(
        opened,
        gateway.verify_key,
        pseudonym=sealed.patient.pseudonym,
        category="oncology",
        created_at=CREATED_AT,
    )


# --- sealing arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"recipients": []}, "at least one recipient"),
        ({"pseudonym": "ABC"}, "pseudonym"),
        ({"created_at": "2026-01-31 12:00:00"}, "RFC 3339"),
        ({"created_at": "2026-01-31T12:00:00+01:00"}, "RFC 3339"),
        ({"created_at": "2026-02-30T12:00:00Z"}, "real date"),
        ({"created_at": "\u0662\u0660\u0662\u0666-01-31T12:00:00Z"}, "RFC 3339"),
        ({"filename": "../etc/passwd"}, "plain file name"),
        ({"filename": ""}, "filename"),
        ({"category": "a\nb"}, "control"),
        ({"signer": SigningKey.generate()}, "signer_id"),
    ],
)
def test_bad_sealing_arguments_are_refused_before_any_work(
    sealed: Sealed, override: dict[str, object], message: str
) -> None:
    with pytest.raises(EnvelopeError, match=message):
        seal_to(sealed, b"x", **override)


def test_record_key_must_be_a_recipient(sealed: Sealed) -> None:
    with pytest.raises(EnvelopeError, match="record key"):
        seal_to(
            sealed, b"x", recipients=[(sealed.doctor.id, sealed.doctor.encryption_key.public_key())]
        )


def test_duplicate_recipient_is_refused(sealed: Sealed) -> None:
    key = sealed.patient.patient_key.record_public_key()
    with pytest.raises(EnvelopeError, match="twice"):
        seal_to(
            sealed,
            b"x",
            recipients=[(sealed.patient.pseudonym, key), (sealed.patient.pseudonym, key)],
        )


def test_streaming_sealer_matches_seal(sealed: Sealed) -> None:
    sealer = Sealer(
        recipients=[(sealed.patient.pseudonym, sealed.patient.patient_key.record_public_key())],
        filename="report.pdf",
        content_type="application/pdf",
        pseudonym=sealed.patient.pseudonym,
        category="oncology",
        created_at=CREATED_AT,
        uploader_id=sealed.uploader.id,
        signer=sealed.uploader,
    )
    with pytest.raises(EnvelopeError):
        _ = sealer.result
    body = b"".join(
        sealer.update(sealed.plaintext[i : i + 5000]) for i in range(0, len(sealed.plaintext), 5000)
    )
    body += sealer.finalize()
    result = sealer.result
    assert result.body_sha256 == hashlib.sha256(body).hexdigest()
    assert result.body_size == len(body) == len(sealed.body)
    opened = open_capsule(
        result.capsule, sealed.patient.patient_key.record_private_key(), sealed.patient.pseudonym
    )
    assert b"".join(open_body([body], opened)) == sealed.plaintext


def test_small_and_empty_files_seal(sealed: Sealed) -> None:
    for plaintext in (b"", pattern(1)):
        result = seal_to(sealed, plaintext)
        opened = open_capsule(result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
        assert opened.plaintext_size == len(plaintext)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("filename", "../../etc/passwd"),
        ("filename", "a\nb"),
        ("created_at", "yesterday"),
        ("plaintext_size", -1),
        ("plaintext_size", True),
        ("pseudonym", "X" * 64),
        ("body_sha256", "00"),
    ],
)
def test_metadata_a_dishonest_sealer_wrote_is_refused(
    sealed: Sealed, field: str, value: object
) -> None:
    """Someone holding the data key can write any metadata; readers still get sane values."""
    opened = open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    metadata = {**opened.metadata(), field: value}
    meta = encrypt_metadata(opened.data_key, metadata)
    capsule = build_capsule(
        opened.data_key, [(sealed.doctor.id, sealed.doctor.encryption_key.public_key())], meta
    )
    with pytest.raises(InvalidEnvelope):
        open_capsule(capsule, sealed.doctor.encryption_key, sealed.doctor.id)


def test_metadata_rebuilt_honestly_opens(sealed: Sealed) -> None:
    """The control for the test above: the same path with unchanged metadata opens."""
    opened = open_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id)
    meta = encrypt_metadata(opened.data_key, opened.metadata())
    capsule = build_capsule(
        opened.data_key, [(sealed.doctor.id, sealed.doctor.encryption_key.public_key())], meta
    )
    assert open_capsule(capsule, sealed.doctor.encryption_key, sealed.doctor.id) == opened
