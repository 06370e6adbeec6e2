"""Rotating a patient's K after a leak: the new key file, and each capsule rewrapped.

A rotation replaces K by a fresh random K' (generation g+1). The pseudonym does not
change: it names the patient on the ledger, where its registration, medical record
number links, grants and history hang on it, so it stays H(K‖UII) of the *first* K and
is no longer derived from the current one. K' derives new scoped keys (envelope.scoped);
every capsule is rewrapped from K's key to K''s key of the same (category, month), with
the same data key and metadata, so the bodies never change.

While the rotation runs the key file holds both: K' as the patient key and K as
`previous_key`, written *before* anything changes on the ledger, so that an interrupted
rotation loses nothing and resumes; `finish_rotation` drops K once every capsule is
rewrapped. A rewrapped capsule has one entry, the patient's new scoped key: other
recipients (identities an uploader sealed to) are dropped, since a reader's access comes
from its grant, whose share is re-made under the new keys.
"""

from __future__ import annotations

from dataclasses import replace

from envelope.capsule import OpenedCapsule, capsule_key_id, rewrap_capsule
from envelope.errors import EnvelopeError, InvalidEnvelope
from envelope.kem import HybridPrivateKey
from envelope.keyfile import PatientKeys
from envelope.patient import PatientKey
from envelope.scoped import key_id, parse_key_id, record_period, scoped_private_key
from envelope.scopedshare import open_with_patient_key


class RotationInProgress(EnvelopeError):
    """A rotation was started and not finished: finish it before starting another."""


def start_rotation(keys: PatientKeys) -> PatientKeys:
    """The patient's keys with a new random K (generation + 1), the old K kept as previous."""
    if keys.previous_key is not None:
        raise RotationInProgress(
            f"a rotation to generation {keys.key_generation} is under way: finish it first"
        )
    return replace(
        keys,
        patient_key=PatientKey.generate(),
        key_generation=keys.key_generation + 1,
        previous_key=keys.patient_key,
    )


def finish_rotation(keys: PatientKeys) -> PatientKeys:
    """The keys without the previous K (every capsule is rewrapped: it opens nothing)."""
    return replace(keys, previous_key=None)


def _key_of(capsule: bytes, patient_key: PatientKey, pseudonym: str) -> HybridPrivateKey:
    named = capsule_key_id(capsule, pseudonym)
    if named is None:
        return patient_key.record_private_key()
    scope = parse_key_id(named)
    if scope is None:
        raise InvalidEnvelope()
    return scoped_private_key(patient_key, *scope)


def opens_with(capsule: bytes, patient_key: PatientKey, pseudonym: str) -> OpenedCapsule | None:
    """The opened capsule if *patient_key* opens it, else None."""
    try:
        return open_with_patient_key(capsule, patient_key, pseudonym)
    except InvalidEnvelope:
        return None


def rewrap_to(
    capsule: bytes,
    *,
    old: PatientKey,
    new: PatientKey,
    pseudonym: str,
    category: str,
    created_at: str,
    body_sha256: str,
) -> bytes:
    """*capsule* (opened by *old*: a scoped capsule, or one sealed to the version 1 or 2
    record key) rewrapped to *new*'s scoped key of its category and month, for the patient
    only. The capsule must be the record's: its metadata must name *pseudonym*, *category*,
    *created_at* and *body_sha256*, as the ledger's record does. Raises InvalidEnvelope when
    it does not open or is another record's."""
    opened = open_with_patient_key(capsule, old, pseudonym)
    if (opened.pseudonym, opened.category, opened.created_at, opened.body_sha256) != (
        pseudonym,
        category,
        created_at,
        body_sha256,
    ):
        raise InvalidEnvelope()
    period = record_period(created_at)
    target = scoped_private_key(new, category, period)
    rewrapped = rewrap_capsule(
        capsule,
        _key_of(capsule, old, pseudonym),
        pseudonym,
        [(pseudonym, target.public_key())],
        key_ids={pseudonym: key_id(category, period)},
    )
    check_rewrapped(
        rewrapped, new=new, pseudonym=pseudonym, category=category, body_sha256=body_sha256
    )
    return rewrapped


def check_rewrapped(
    capsule: bytes, *, new: PatientKey, pseudonym: str, category: str, body_sha256: str
) -> OpenedCapsule:
    """Check that *new* opens *capsule* as the record's (InvalidEnvelope otherwise)."""
    opened = open_with_patient_key(capsule, new, pseudonym)
    if capsule_key_id(capsule, pseudonym) is None or (
        opened.pseudonym,
        opened.category,
        opened.body_sha256,
    ) != (pseudonym, category, body_sha256):
        raise InvalidEnvelope()
    return opened


__all__ = [
    "RotationInProgress",
    "check_rewrapped",
    "finish_rotation",
    "opens_with",
    "rewrap_to",
    "start_rotation",
]
