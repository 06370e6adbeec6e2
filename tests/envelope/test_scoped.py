"""Scoped record keys: one key pair per (category, UTC month) derived from K; scoped shares
carry exactly the seeds of a grant; version 2 capsules name the key they are sealed to."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from envelope import (
    EnvelopeError,
    HybridPrivateKey,
    IdentityKeys,
    InvalidEnvelope,
    PatientKey,
    capsule_key_id,
    open_capsule,
    open_scoped_share,
    open_with_patient_key,
    rewrap_capsule,
    seal,
    seal_scoped_share,
)
from envelope.scoped import (
    grant_seeds,
    key_from_seeds,
    key_id,
    months,
    next_period,
    parse_key_id,
    record_period,
    scoped_private_key,
    scoped_record_key,
    scoped_seed,
)
from envelope.scopedshare import MAX_SHARE_SEEDS, ScopedSeeds, scoped_share_info
from tests.envelope.conftest import load_vector

VECTORS = load_vector("scoped_key.json")
PATIENT = PatientKey(bytes(range(32)))
PSEUDONYM = "a" * 64
DOCTOR = IdentityKeys.generate("dr-house", "clinician")
SIGNER = IdentityKeys.generate("aria-export", "system")


@pytest.mark.parametrize(
    "case", VECTORS["keys"], ids=[f"{c['category']}-{c['period']}" for c in VECTORS["keys"]]
)
def test_scoped_key_vector(case: dict[str, str]) -> None:
    patient_key = PatientKey(bytes.fromhex(case["patient_key"]))
    category, period = case["category"], case["period"]
    assert scoped_seed(patient_key, category, period).hex() == case["seed"]
    key = scoped_record_key(patient_key, category, f"{period}-01T00:00:00Z")
    assert key.is_seed
    assert key.public_key().to_bytes() == base64.b64decode(case["public_key"])
    assert key_id(category, period) == case["key_id"]
    assert parse_key_id(case["key_id"]) == (category, period)


def test_scoped_share_vector_opens_to_its_seeds() -> None:
    case = VECTORS["share"]
    grantee = HybridPrivateKey(base64.b64decode(case["grantee_private_key"]))
    sealed = base64.b64decode(case["share"])
    info = scoped_share_info(case["pseudonym"], case["grantee_id"])
    assert info.hex() == case["info"]
    assert grantee.open(sealed, info=info) == case["plaintext"].encode()
    seeds = open_scoped_share(
        sealed, grantee, pseudonym=case["pseudonym"], grantee_id=case["grantee_id"]
    )
    assert seeds.scope == [tuple(item) for item in case["scope"]]
    patient_key = PatientKey(bytes.fromhex(VECTORS["keys"][0]["patient_key"]))
    for (category, period), seed in seeds.seeds.items():
        assert seed == scoped_seed(patient_key, category, period)


def test_scoped_capsule_vector_opens_with_k_seeds_and_the_other_recipient() -> None:
    case = VECTORS["capsule"]
    capsule = case["capsule"].encode()
    patient_key = PatientKey(bytes.fromhex(VECTORS["keys"][0]["patient_key"]))
    assert capsule_key_id(capsule, case["pseudonym"]) == case["key_id"]
    assert capsule_key_id(capsule, "dr-house") == "identity"
    assert (
        open_with_patient_key(capsule, patient_key, case["pseudonym"]).created_at
        == (case["created_at"])
    )
    doctor = HybridPrivateKey(base64.b64decode(case["doctor_private_key"]))
    assert open_capsule(capsule, doctor, "dr-house").plaintext_size == case["plaintext_length"]
    seeds = ScopedSeeds(
        case["pseudonym"],
        "dr-house",
        {("lab-results", "2026-02"): scoped_seed(patient_key, "lab-results", "2026-02")},
    )
    assert seeds.open_capsule(capsule).category == "lab-results"
    with pytest.raises(InvalidEnvelope):  # the single record key is not the scoped key
        open_capsule(capsule, patient_key.record_private_key(), case["pseudonym"])


def test_months_and_periods() -> None:
    assert months("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert next_period("2026-12") == "2027-01"
    assert next_period("2026-01", -1) == "2025-12"
    assert record_period("2026-02-28T23:59:59.999Z") == "2026-02"


def test_a_grant_opens_exactly_its_categories_and_months() -> None:
    seeds = grant_seeds(PATIENT, ["lab-results"], "2026-01", "2026-03")
    assert len(seeds) == 3
    inside = ["2026-01-01T00:00:00Z", "2026-02-20T12:00:00Z", "2026-03-31T23:59:59Z"]
    for created_at in inside:
        key = key_from_seeds(seeds, "lab-results", created_at)
        assert key is not None
        assert (
            key.public_key() == scoped_record_key(PATIENT, "lab-results", created_at).public_key()
        )
    for category, created_at in [
        ("lab-results", "2025-12-31T23:59:59Z"),
        ("lab-results", "2026-04-01T00:00:00Z"),
        ("treatment-summary", "2026-02-20T12:00:00Z"),
    ]:
        assert key_from_seeds(seeds, category, created_at) is None


def test_keys_differ_across_categories_months_and_patients() -> None:
    base = scoped_private_key(PATIENT, "lab-results", "2026-02").public_key()
    for key in (
        scoped_private_key(PATIENT, "lab-results", "2026-03"),
        scoped_private_key(PATIENT, "treatment-summary", "2026-02"),
        scoped_private_key(PatientKey(bytes(32)), "lab-results", "2026-02"),
    ):
        assert key.public_key() != base
    assert base != PATIENT.record_public_key()


def sealed(category: str, created_at: str, *, scoped: bool = True) -> bytes:
    public = (
        scoped_record_key(PATIENT, category, created_at).public_key()
        if scoped
        else PATIENT.record_public_key()
    )
    return seal(
        io.BytesIO(b"report"),
        io.BytesIO(),
        recipients=[(PSEUDONYM, public), (DOCTOR.id, DOCTOR.public().encryption_key)],
        filename="r.pdf",
        content_type="application/pdf",
        pseudonym=PSEUDONYM,
        category=category,
        created_at=created_at,
        uploader_id=SIGNER.id,
        signer=SIGNER,
        scoped=scoped,
    ).capsule


def share_for(scope: list[tuple[str, str]], grantee: IdentityKeys = DOCTOR) -> bytes:
    return seal_scoped_share(
        PATIENT,
        pseudonym=PSEUDONYM,
        grantee_id=grantee.id,
        grantee_key=grantee.public().encryption_key,
        scope=scope,
    )


def test_a_scoped_share_opens_its_months_only() -> None:
    share = share_for([("lab-results", "2026-02"), ("lab-results", "2026-03")])
    seeds = open_scoped_share(
        share, DOCTOR.encryption_key, pseudonym=PSEUDONYM, grantee_id=DOCTOR.id
    )
    assert seeds.open_capsule(sealed("lab-results", "2026-03-31T23:59:59Z")).category
    for capsule in (
        sealed("lab-results", "2026-04-01T00:00:00Z"),
        sealed("treatment-summary", "2026-02-10T00:00:00Z"),
        sealed("lab-results", "2026-02-10T00:00:00Z", scoped=False),
    ):
        with pytest.raises(InvalidEnvelope):
            seeds.open_capsule(capsule)


def test_k_opens_scoped_and_version_1_capsules() -> None:
    for capsule in (
        sealed("lab-results", "2026-02-10T00:00:00Z"),
        sealed("lab-results", "2026-02-10T00:00:00Z", scoped=False),
    ):
        assert open_with_patient_key(capsule, PATIENT, PSEUDONYM).filename == "r.pdf"
    with pytest.raises(InvalidEnvelope):
        open_with_patient_key(
            sealed("lab-results", "2026-02-10T00:00:00Z"), PatientKey(bytes(32)), PSEUDONYM
        )


def test_the_key_id_is_bound_into_the_wrap() -> None:
    capsule = sealed("lab-results", "2026-02-10T00:00:00Z")
    document = json.loads(capsule)
    document["recipients"][0]["key"] = "scoped-v2/lab-results/2026-03"
    changed = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    key = scoped_private_key(PATIENT, "lab-results", "2026-02")
    with pytest.raises(InvalidEnvelope):
        open_capsule(changed, key, PSEUDONYM)


def test_rewrap_keeps_a_version_2_capsule_and_its_key_ids() -> None:
    capsule = sealed("lab-results", "2026-02-10T00:00:00Z")
    rewrapped = rewrap_capsule(
        capsule,
        DOCTOR.encryption_key,
        DOCTOR.id,
        [(PSEUDONYM, scoped_private_key(PATIENT, "lab-results", "2026-02").public_key())],
    )
    assert capsule_key_id(rewrapped, PSEUDONYM) == "scoped-v2/lab-results/2026-02"
    assert open_with_patient_key(rewrapped, PATIENT, PSEUDONYM).category == "lab-results"


def test_a_share_for_another_grantee_or_patient_does_not_open() -> None:
    other = IdentityKeys.generate("dr-grey", "clinician")
    share = share_for([("lab-results", "2026-02")])
    for pseudonym, grantee in ((PSEUDONYM, other), ("b" * 64, DOCTOR)):
        with pytest.raises(InvalidEnvelope):
            open_scoped_share(
                share, grantee.encryption_key, pseudonym=pseudonym, grantee_id=grantee.id
            )
    with pytest.raises(InvalidEnvelope):  # right key, but the share names dr-house
        open_scoped_share(share, DOCTOR.encryption_key, pseudonym=PSEUDONYM, grantee_id="dr-grey")


def test_a_share_is_checked_against_the_published_keys() -> None:
    share = share_for([("lab-results", "2026-02")])
    wrong = {
        ("lab-results", "2026-02"): scoped_private_key(
            PATIENT, "lab-results", "2026-03"
        ).public_key()
    }
    with pytest.raises(InvalidEnvelope):
        open_scoped_share(
            share, DOCTOR.encryption_key, pseudonym=PSEUDONYM, grantee_id=DOCTOR.id, published=wrong
        )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: scoped_seed(PATIENT, "Lab", "2026-01"), "category"),
        (lambda: scoped_seed(PATIENT, "lab\x00x", "2026-01"), "category"),
        (lambda: scoped_seed(PATIENT, "lab", "2026-13"), "YYYY-MM"),
        (lambda: scoped_seed(PATIENT, "lab", "0000-01"), "YYYY-MM"),
        (lambda: record_period("2026-02-03T10:00:00+01:00"), "RFC 3339 UTC"),
        (lambda: months("2026-03", "2026-02"), "before it starts"),
        (lambda: months("1900-01", "2026-02"), "at most"),
        (lambda: next_period("9999-12"), "outside"),
        (lambda: share_for([]), "at least one"),
        (
            lambda: share_for([("lab-results", p) for p in months("1900-01", "1999-12")]),
            str(MAX_SHARE_SEEDS),
        ),
    ],
)
def test_bad_input_is_refused_clearly(call: Any, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        call()
