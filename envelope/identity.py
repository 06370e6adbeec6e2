"""Identity keys (Ed25519 signing + hybrid HPKE encryption) and canonical-JSON signatures.

Every actor — patient, clinician, hospital system, admin, auditor, the ledger itself — has
random identity keys. They are never derived from a patient key K, so that a clinician who
holds K cannot sign as the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from envelope.canonical import b64decode, b64encode, canonical_json
from envelope.errors import EnvelopeError, InvalidSignature
from envelope.kem import HybridPrivateKey, HybridPublicKey
from envelope.xwing import PUBLIC_LEN

ROLES = ("patient", "clinician", "system", "admin", "auditor", "ledger", "study")


class VerifyKey:
    """An Ed25519 public key that checks signatures over canonical JSON."""

    __slots__ = ("_key", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise EnvelopeError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
        self._raw = bytes(raw)
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(raw)

    def to_bytes(self) -> bytes:
        return self._raw

    def verify_bytes(self, message: bytes, signature: bytes) -> None:
        try:
            self._key.verify(signature, message)
        except _CryptoInvalidSignature as exc:
            raise InvalidSignature("the signature does not match the signed data") from exc

    def verify(self, value: Any, signature: bytes) -> None:
        """Raise InvalidSignature unless *signature* signs the canonical JSON of *value*."""
        self.verify_bytes(canonical_json(value), signature)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"VerifyKey({b64encode(self._raw)})"


class SigningKey:
    """An Ed25519 private key that signs canonical JSON."""

    __slots__ = ("_key", "_verify_key")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise EnvelopeError(f"an Ed25519 private key is 32 bytes, got {len(raw)}")
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        self._verify_key = VerifyKey(self._key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.generate().private_bytes_raw())

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    @property
    def verify_key(self) -> VerifyKey:
        return self._verify_key

    def sign_bytes(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def sign(self, value: Any) -> bytes:
        """Sign the RFC 8785 canonical JSON of *value*."""
        return self._key.sign(canonical_json(value))

    def __repr__(self) -> str:
        return f"SigningKey(public={self._verify_key!r})"


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What others may know of an identity: its id, role and two public keys."""

    id: str
    role: str
    verify_key: VerifyKey
    encryption_key: HybridPublicKey

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "role": self.role,
            "signing_public_key": b64encode(self.verify_key.to_bytes()),
            "encryption_public_key": b64encode(self.encryption_key.to_bytes()),
        }

    @classmethod
    def from_json(cls, data: Any) -> PublicIdentity:
        if not isinstance(data, dict):
            raise EnvelopeError("a public identity is a JSON object")
        missing = {"id", "role", "signing_public_key", "encryption_public_key"} - data.keys()
        if missing:
            raise EnvelopeError(f"public identity lacks {', '.join(sorted(missing))}")
        ident, role = data["id"], data["role"]
        if not isinstance(ident, str) or not ident:
            raise EnvelopeError("public identity 'id' must be a non-empty string")
        if role not in ROLES:
            raise EnvelopeError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        verify_raw = b64decode(data["signing_public_key"], length=32, what="signing_public_key")
        enc_raw = b64decode(
            data["encryption_public_key"], length=PUBLIC_LEN, what="encryption_public_key"
        )
        return cls(ident, role, VerifyKey(verify_raw), HybridPublicKey(enc_raw))


@dataclass(frozen=True, slots=True)
class IdentityKeys:
    """An identity's private keys: one for signing, one for receiving sealed secrets."""

    id: str
    role: str
    signing_key: SigningKey
    encryption_key: HybridPrivateKey

    @classmethod
    def generate(cls, id: str, role: str) -> IdentityKeys:
        if role not in ROLES:
            raise EnvelopeError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if not id:
            raise EnvelopeError("an identity needs a non-empty id")
        return cls(id, role, SigningKey.generate(), HybridPrivateKey.generate())

    def public(self) -> PublicIdentity:
        return PublicIdentity(
            self.id, self.role, self.signing_key.verify_key, self.encryption_key.public_key()
        )

    def sign(self, value: Any) -> bytes:
        return self.signing_key.sign(value)
