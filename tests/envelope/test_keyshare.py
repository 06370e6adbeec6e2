"""Key shares open only for the grantee, the pseudonym and the K they were made for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from envelope import (
    HybridPrivateKey,
    IdentityKeys,
    InvalidEnvelope,
    PatientKey,
    PatientKeys,
    open_key_share,
    seal_key_share,
)
from envelope.keyshare import KEY_SHARE_LEN
from tests.envelope.conftest import UII


@pytest.fixture
def share(patient: PatientKeys, doctor: IdentityKeys) -> bytes:
    return seal_key_share(
        patient.patient_key,
        pseudonym=patient.pseudonym,
        grantee_id=doctor.id,
        grantee_key=doctor.encryption_key.public_key(),
    )


def test_grantee_recovers_k(share: bytes, patient: PatientKeys, doctor: IdentityKeys) -> None:
    assert len(share) == KEY_SHARE_LEN
    recovered = open_key_share(
        share,
        doctor.encryption_key,
        pseudonym=patient.pseudonym,
        grantee_id=doctor.id,
        record_public_key=patient.patient_key.record_public_key(),
    )
    assert recovered == patient.patient_key
    assert recovered.pseudonym(UII) == patient.pseudonym


def test_shares_are_randomised(patient: PatientKeys, doctor: IdentityKeys, share: bytes) -> None:
    again = seal_key_share(
        patient.patient_key,
        pseudonym=patient.pseudonym,
        grantee_id=doctor.id,
        grantee_key=doctor.encryption_key.public_key(),
    )
    assert again != share


WRONG: dict[str, tuple[str, Callable[[], object]]] = {
    "grantee id": ("grantee_id", lambda: "dr-other"),
    "empty grantee id": ("grantee_id", lambda: ""),
    "pseudonym": ("pseudonym", lambda: "f" * 64),
    "malformed pseudonym": ("pseudonym", lambda: "not-hex"),
    "key": ("key", HybridPrivateKey.generate),
    "record key": ("record_public_key", lambda: PatientKey.generate().record_public_key()),
}


@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_share_fails_for_anything_else(
    share: bytes, patient: PatientKeys, doctor: IdentityKeys, wrong: str
) -> None:
    arguments: dict[str, object] = {
        "key": doctor.encryption_key,
        "pseudonym": patient.pseudonym,
        "grantee_id": doctor.id,
        "record_public_key": patient.patient_key.record_public_key(),
    }
    parameter, make = WRONG[wrong]
    arguments[parameter] = make()
    with pytest.raises(InvalidEnvelope):
        open_key_share(share, **arguments)  # type: ignore[arg-type]


def test_share_of_a_different_k_is_caught_by_the_record_key(
    patient: PatientKeys, doctor: IdentityKeys
) -> None:
    """A share is well-formed but holds another K: only the record-key check notices."""
    impostor = seal_key_share(
        PatientKey.generate(),
        pseudonym=patient.pseudonym,
        grantee_id=doctor.id,
        grantee_key=doctor.encryption_key.public_key(),
    )
    with pytest.raises(InvalidEnvelope):
        open_key_share(
            impostor,
            doctor.encryption_key,
            pseudonym=patient.pseudonym,
            grantee_id=doctor.id,
            record_public_key=patient.patient_key.record_public_key(),
        )


def test_every_changed_byte_fails(share: bytes, patient: PatientKeys, doctor: IdentityKeys) -> None:
    for position in range(0, len(share), 7):
        changed = bytearray(share)
        changed[position] ^= 0x80
        with pytest.raises(InvalidEnvelope):
            open_key_share(
                bytes(changed),
                doctor.encryption_key,
                pseudonym=patient.pseudonym,
                grantee_id=doctor.id,
            )


@pytest.mark.parametrize("cut", [0, 1, 1120, KEY_SHARE_LEN - 1])
def test_truncated_or_extended_share_fails(
    share: bytes, patient: PatientKeys, doctor: IdentityKeys, cut: int
) -> None:
    for bad in (share[:cut], share + b"\x00"):
        with pytest.raises(InvalidEnvelope):
            open_key_share(
                bad, doctor.encryption_key, pseudonym=patient.pseudonym, grantee_id=doctor.id
            )
