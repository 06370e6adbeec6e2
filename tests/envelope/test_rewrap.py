"""Rewrapping a capsule: new recipients get the same data key and metadata, and only a key
that opens the capsule can rewrap it."""

from __future__ import annotations

import json

import pytest

from envelope import (
    EnvelopeError,
    HybridPrivateKey,
    IdentityKeys,
    InvalidEnvelope,
    open_body,
    open_capsule,
    rewrap_capsule,
)
from tests.envelope.conftest import Sealed


def test_rewrap_gives_new_recipients_the_same_key_and_metadata(sealed: Sealed) -> None:
    new_doctor = IdentityKeys.generate("dr-cuddy", "clinician")
    record_key = sealed.patient.patient_key.record_private_key()
    rewrapped = rewrap_capsule(
        sealed.result.capsule,
        record_key,
        sealed.patient.pseudonym,
        [
            (sealed.patient.pseudonym, record_key.public_key()),
            (new_doctor.id, new_doctor.encryption_key.public_key()),
        ],
    )
    before = open_capsule(sealed.result.capsule, record_key, sealed.patient.pseudonym)
    after = open_capsule(rewrapped, new_doctor.encryption_key, new_doctor.id)
    assert after == before
    assert b"".join(open_body([sealed.body], after)) == sealed.plaintext
    assert json.loads(rewrapped)["meta"] == json.loads(sealed.result.capsule)["meta"]
    with pytest.raises(InvalidEnvelope):
        open_capsule(rewrapped, sealed.doctor.encryption_key, sealed.doctor.id)


def test_rewrap_needs_a_key_that_opens(sealed: Sealed) -> None:
    with pytest.raises(InvalidEnvelope):
        rewrap_capsule(
            sealed.result.capsule,
            HybridPrivateKey.generate(),
            sealed.doctor.id,
            [(sealed.doctor.id, sealed.doctor.encryption_key.public_key())],
        )


def test_rewrap_refuses_no_recipients(sealed: Sealed) -> None:
    with pytest.raises(EnvelopeError):
        rewrap_capsule(sealed.result.capsule, sealed.doctor.encryption_key, sealed.doctor.id, [])
