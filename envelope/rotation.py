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

from envelope.capsule import capsule_key_id, open_capsule, rewrap_capsule
from envelope.errors import EnvelopeError, InvalidEnvelope
from envelope.kem import HybridPrivateKey
from envelope.keyfile import PatientKeys
from envelope.patient import PatientKey
from envelope.scoped import key_id, parse_key_id, record_period, scoped_private_key


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


class Rewrapper:
    """Rewraps capsules of one patient from the *old* K to the *new* K's scoped keys,
    keeping each derived key pair (one per category and month, not per capsule)."""

    def __init__(self, *, old: PatientKey, new: PatientKey, pseudonym: str) -> None:
        self._old, self._new, self._pseudonym = old, new, pseudonym
        self._keys: dict[tuple[bool, str, str], HybridPrivateKey] = {}

    def _scoped(self, new: bool, category: str, period: str) -> HybridPrivateKey:
        key = self._keys.get((new, category, period))
        if key is None:
            key = scoped_private_key(self._new if new else self._old, category, period)
            self._keys[(new, category, period)] = key
        return key

    def _old_key(self, capsule: bytes) -> HybridPrivateKey:
        named = capsule_key_id(capsule, self._pseudonym)
        if named is None:  # sealed before scoped keys, to the single record key
            key = self._keys.get((False, "", ""))
            if key is None:
                key = self._keys[(False, "", "")] = self._old.record_private_key()
            return key
        scope = parse_key_id(named)
        if scope is None:
            raise InvalidEnvelope()
        return self._scoped(False, *scope)

    def rewrap(self, capsule: bytes, *, category: str, created_at: str, body_sha256: str) -> bytes:
        """*capsule* (opened by the old K: a scoped capsule, or one sealed to the version 1
        or 2 record key) rewrapped to the new K's scoped key of the record's category and
        month, for the patient only (other recipients are dropped). The new capsule is
        opened with the new K and its metadata must name the record's pseudonym, category,
        created_at and body: InvalidEnvelope when the capsule does not open or is another
        record's."""
        pseudonym = self._pseudonym
        try:
            period = record_period(created_at)
            target = self._scoped(True, category, period)
        except EnvelopeError as exc:
            raise InvalidEnvelope() from exc
        rewrapped = rewrap_capsule(
            capsule,
            self._old_key(capsule),
            pseudonym,
            [(pseudonym, target.public_key())],
            key_ids={pseudonym: key_id(category, period)},
        )
        opened = open_capsule(rewrapped, target, pseudonym)
        if (opened.pseudonym, opened.category, opened.created_at, opened.body_sha256) != (
            pseudonym,
            category,
            created_at,
            body_sha256,
        ):
            raise InvalidEnvelope()
        return rewrapped


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
    """One capsule rewrapped by a `Rewrapper` (see there)."""
    return Rewrapper(old=old, new=new, pseudonym=pseudonym).rewrap(
        capsule, category=category, created_at=created_at, body_sha256=body_sha256
    )


__all__ = ["Rewrapper", "RotationInProgress", "finish_rotation", "rewrap_to", "start_rotation"]
