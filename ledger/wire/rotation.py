"""Identity key rotation: the statement both keys sign, and the request an admin submits.

An identity replaces its signing and encryption keys in three steps:

1. Its holder makes new keys and a `RotationRequest`: the *rotation statement* (the
   identity id, the signing key it replaces, the new public keys) signed by the current
   (old) signing key, which says "I, holder of the old key, want these keys", and by the new
   signing key, which proves the holder has it.
2. An admin checks the request out of band (it is the identity's holder asking) and
   submits a `rotate_keys` transaction carrying the request, signed by the admin.
3. The rules verify all three signatures over the canonical JSON of the statement (the
   admin's by the transaction signature, which covers the body and so the statement).

From that entry on, the identity signs with the new key: a transaction or a login signed
with the old key is refused. Entries before it still verify against the key valid at
their index, which the state keeps (`retired_keys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envelope import EnvelopeError, IdentityKeys, PublicIdentity, b64decode, b64encode
from ledger.errors import MalformedTransaction

ROTATION_PURPOSE = "ehrgate/rotate-keys/v1"
ROTATION_REQUEST_KIND = "ehrgate-rotation-request"
ROTATION_FIELDS = (
    "identity_id",
    "previous_signing_public_key",
    "signing_public_key",
    "encryption_public_key",
)
"""What a rotation statement names (besides its purpose), and the `rotate_keys` body."""


def rotation_statement(
    identity_id: str,
    previous_signing_public_key: str,
    signing_public_key: str,
    encryption_public_key: str,
) -> dict[str, str]:
    """The object the old and the new signing key both sign (as canonical JSON)."""
    return {
        "purpose": ROTATION_PURPOSE,
        "identity_id": identity_id,
        "previous_signing_public_key": previous_signing_public_key,
        "signing_public_key": signing_public_key,
        "encryption_public_key": encryption_public_key,
    }


@dataclass(frozen=True, slots=True)
class RotationRequest:
    """An identity's request to replace its keys, signed by its old and its new key.

    JSON form (the file `ehrgate keys rotate --request` writes)::

        {"kind": "ehrgate-rotation-request", "identity_id", "role",
         "previous_signing_public_key", "signing_public_key", "encryption_public_key",
         "identity_signature": B64, "new_key_signature": B64}
    """

    identity_id: str
    role: str
    previous_signing_public_key: str
    signing_public_key: str
    encryption_public_key: str
    identity_signature: str
    new_key_signature: str

    def statement(self) -> dict[str, str]:
        return rotation_statement(
            self.identity_id,
            self.previous_signing_public_key,
            self.signing_public_key,
            self.encryption_public_key,
        )

    def new_identity(self) -> PublicIdentity:
        """The identity as it will be after the rotation."""
        return PublicIdentity.from_json(
            {
                "id": self.identity_id,
                "role": self.role,
                "signing_public_key": self.signing_public_key,
                "encryption_public_key": self.encryption_public_key,
            }
        )

    def body(self) -> dict[str, str]:
        """The members of the `rotate_keys` transaction body (besides tx_id, issued_at)."""
        return {
            "identity_id": self.identity_id,
            "previous_signing_public_key": self.previous_signing_public_key,
            "signing_public_key": self.signing_public_key,
            "encryption_public_key": self.encryption_public_key,
            "identity_signature": self.identity_signature,
            "new_key_signature": self.new_key_signature,
        }

    def to_json(self) -> dict[str, Any]:
        return {"kind": ROTATION_REQUEST_KIND, "role": self.role, **self.body()}

    @classmethod
    def from_json(cls, data: Any) -> RotationRequest:
        """A request read from JSON; MalformedTransaction says what is wrong with it."""
        names = {"kind", "role", *ROTATION_FIELDS, "identity_signature", "new_key_signature"}
        if not isinstance(data, dict) or data.get("kind") != ROTATION_REQUEST_KIND:
            raise MalformedTransaction("not an ehrgate key rotation request")
        if set(data) != names:
            raise MalformedTransaction(
                f"a rotation request has exactly the members {', '.join(sorted(names))}"
            )
        if not all(isinstance(data[name], str) for name in names):
            raise MalformedTransaction("every member of a rotation request is text")
        request = cls(**{name: data[name] for name in names if name != "kind"})
        try:
            request.new_identity()
            b64decode(request.previous_signing_public_key, length=32, what="previous key")
        except EnvelopeError as exc:
            raise MalformedTransaction(f"the rotation request: {exc}") from exc
        return request


def request_rotation(old: IdentityKeys, new: IdentityKeys) -> RotationRequest:
    """The request by the holder of *old* to replace its keys with *new* (same id, role)."""
    if (old.id, old.role) != (new.id, new.role):
        raise ValueError("the new keys must be made for the same identity id and role")
    current = b64encode(old.signing_key.verify_key.to_bytes())
    public = new.public().to_json()
    if public["signing_public_key"] == current:
        raise ValueError("the new signing key is the current one; make new keys")
    statement = rotation_statement(
        old.id, current, public["signing_public_key"], public["encryption_public_key"]
    )
    return RotationRequest(
        identity_id=old.id,
        role=old.role,
        previous_signing_public_key=current,
        signing_public_key=public["signing_public_key"],
        encryption_public_key=public["encryption_public_key"],
        identity_signature=b64encode(old.sign(statement)),
        new_key_signature=b64encode(new.sign(statement)),
    )
