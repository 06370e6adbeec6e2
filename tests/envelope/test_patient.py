"""The patient key: pseudonym rules beyond the vectors, derivations, and secrecy in reprs."""

from __future__ import annotations

import pytest

from envelope import (
    EnvelopeError,
    InvalidUII,
    PatientKey,
    PatientKeys,
    b64decode,
    b64encode,
    canonical_uii,
    is_pseudonym,
)
from envelope.patient import normalise_uii_value
from tests.envelope.conftest import UII


def test_generated_keys_differ_and_make_different_pseudonyms() -> None:
    first, second = PatientKey.generate(), PatientKey.generate()
    assert first != second
    assert first.pseudonym(UII) != second.pseudonym(UII)


def test_pseudonym_is_64_lowercase_hex() -> None:
    pseudonym = PatientKey.generate().pseudonym(UII)
    assert is_pseudonym(pseudonym)
    assert not is_pseudonym(pseudonym.upper())
    assert not is_pseudonym(pseudonym[:-1])


def test_record_key_is_a_function_of_k_alone() -> None:
    key = PatientKey.generate()
    assert PatientKey(key.to_bytes()).record_public_key() == key.record_public_key()
    assert PatientKey.generate().record_public_key() != key.record_public_key()


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("  A\u00a0 B\t\nC  ", "a b c"),
        ("E\u0301", "\u00e9"),
        ("Straße", "strasse"),
        ("x\u200by", "x\u200by"),
    ],
)
def test_value_normalisation(value: str, normal: str) -> None:
    assert normalise_uii_value(value) == normal


def test_keys_are_kept_as_given() -> None:
    assert canonical_uii({"Name": "x"}) != canonical_uii({"name": "x"})
    assert canonical_uii({" name": "x"}) == b'{" name":"x"}'


@pytest.mark.parametrize(
    ("uii", "message"),
    [
        ({}, "no fields"),
        ({"a": 1}, "must be text"),
        ({"a": " "}, "empty"),
        ({1: "x"}, "field names"),
        ("national_id=1", "mapping"),
        ({"a": "\ud800"}, "canonical JSON"),
    ],
)
def test_unusable_uii_has_a_clear_error(uii: object, message: str) -> None:
    with pytest.raises(InvalidUII, match=message):
        canonical_uii(uii)  # type: ignore[arg-type]


def test_patient_key_length_is_checked() -> None:
    with pytest.raises(EnvelopeError, match="32 bytes"):
        PatientKey(b"short")


def test_secrets_stay_out_of_reprs() -> None:
    patient = PatientKeys.generate(UII)
    assert patient.patient_key.to_bytes().hex() not in repr(patient)
    assert "secret" in repr(patient.patient_key)


def test_patient_identity_is_named_by_the_pseudonym() -> None:
    patient = PatientKeys.generate(UII)
    assert patient.identity.id == patient.pseudonym
    assert patient.identity.role == "patient"
    # identity keys are random, never derived from K
    assert patient.identity.encryption_key.public_key() != patient.patient_key.record_public_key()


def test_base64_must_be_canonical() -> None:
    assert b64decode(b64encode(b"\x00\x01")) == b"\x00\x01"
    assert b64encode(b"\x00\x01") == "AAE="
    with pytest.raises(EnvelopeError, match="canonical"):
        b64decode("AAF=")  # same bytes, non-zero unused bits
    with pytest.raises(EnvelopeError, match="valid base64"):
        b64decode("AAE")
