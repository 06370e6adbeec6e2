"""The hospital's emergency key service: how a clinician opens records under break-glass.

A patient who opts in shares the scoped keys of the chosen categories with the hospital's
emergency identity (a `system` identity, ``emergency@hospital``). Its private key is held
by the hospital's own system (its bridge or another service inside the hospital), never by
the gateway and never by a clinician. During a live break-glass session the gateway lets
that identity read its key share and the patient's capsules, and lets the clinician read
the records' metadata, capsules and bodies; each read is audited as a break-glass read.

To open a record the clinician's client asks the service (`EmergencyKeyService.unlock`)
for the record's capsule rewrapped to the clinician's own encryption key. The service
unwraps the record's data key with the patient's scoped key for that category and month
and wraps it for the clinician: the clinician receives one data key per record it asked
for, never a seed, so nothing it holds opens records it did not read during the session.
The service asks the gateway (as the emergency identity) for the share and the capsule,
and the gateway answers only while the session holds: the service cannot be used to open
records outside a live session, whatever the clinician asks.

The gateway never sees a key or a plaintext: it serves sealed capsules and bodies and
checks sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ehrgate.errors import Denied
from envelope import (
    HybridPublicKey,
    IdentityKeys,
    InvalidEnvelope,
    ScopedSeeds,
    open_scoped_share,
    rewrap_capsule,
)


class EmergencyKeyError(Denied):
    """The emergency key service cannot unlock a record (no live session, no key)."""


@dataclass(frozen=True, slots=True)
class EmergencyKeyService:
    """The hospital-side holder of the emergency identity's keys."""

    identity: IdentityKeys

    def seeds(self, sealed_share: bytes, pseudonym: str) -> ScopedSeeds:
        """The patient's break-glass key share, opened."""
        try:
            return open_scoped_share(
                sealed_share, self.identity.encryption_key, pseudonym=pseudonym,
                grantee_id=self.identity.id,
            )  # fmt: skip
        except InvalidEnvelope as exc:
            raise EmergencyKeyError(
                f"the key share of {pseudonym} does not open for {self.identity.id}"
            ) from exc

    def unlock(
        self,
        *,
        seeds: ScopedSeeds,
        pseudonym: str,
        capsule: bytes,
        category: str,
        created_at: str,
        clinician_id: str,
        clinician_key: HybridPublicKey,
    ) -> bytes:
        """The record's capsule rewrapped for the clinician (one data key, no seed)."""
        key = seeds.key_for(category, created_at)
        if key is None:
            raise EmergencyKeyError(
                f"the patient's break-glass share holds no key for {category} in "
                f"{created_at[:7]}: the patient did not include that category"
            )
        try:
            return rewrap_capsule(
                capsule, key, pseudonym, [(clinician_id, clinician_key)],
                key_ids={clinician_id: "identity"},
            )  # fmt: skip
        except InvalidEnvelope as exc:
            raise EmergencyKeyError("the capsule does not open with the break-glass key") from exc
