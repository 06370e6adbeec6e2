"""The patient key K, the pseudonym H(K‖UII) and the record key pair derived from K.

- canonical UII: every value NFC-normalised, then runs of whitespace (characters for which
  ``str.isspace()`` is true) collapsed to one space and stripped at both ends, then
  case-folded (``str.casefold``); keys are kept exactly as given; the mapping is encoded as
  RFC 8785 canonical JSON.
- pseudonym = lowercase hex SHA3-256(b"ehrgate/pseudonym/v1" ‖ 0x00 ‖ K ‖ canonical UII).
- record key = HKDF-SHA256(ikm=K, salt=None, info=b"ehrgate/record-key/v1", L=96), read as a
  64-byte ML-KEM-768 seed followed by a 32-byte X25519 private key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.canonical import canonical_json
from envelope.errors import EnvelopeError, InvalidUII
from envelope.kem import PRIVATE_LEN, HybridPrivateKey, HybridPublicKey

PATIENT_KEY_LEN = 32
PSEUDONYM_DOMAIN = b"ehrgate/pseudonym/v1"
RECORD_KEY_INFO = b"ehrgate/record-key/v1"
PSEUDONYM_HEX_LEN = 64


def normalise_uii_value(value: str) -> str:
    """NFC, then whitespace runs → one space (stripped at the ends), then case folding."""
    return " ".join(unicodedata.normalize("NFC", value).split()).casefold()


def canonical_uii(uii: Mapping[str, str]) -> bytes:
    """The canonical bytes of a patient's identifying fields.

    Keys are field names chosen by the integration (e.g. ``national_id``, ``birth_date``)
    and are used exactly as given: two systems must agree on them. Values are normalised.
    An empty mapping, a non-text key or value, or a value that is empty after
    normalisation is refused, because it would silently produce a pseudonym that no other
    system could reproduce from the same person.
    """
    if not isinstance(uii, Mapping):
        raise InvalidUII("the UII must be a mapping of field names to text values")
    if not uii:
        raise InvalidUII("the UII has no fields; give at least one identifying field")
    normalised: dict[str, str] = {}
    for key, value in uii.items():
        if not isinstance(key, str) or not key:
            raise InvalidUII(f"UII field names must be non-empty text, got {key!r}")
        if not isinstance(value, str):
            raise InvalidUII(f"UII field {key!r} must be text, got {type(value).__name__}")
        clean = normalise_uii_value(value)
        if not clean:
            raise InvalidUII(f"UII field {key!r} is empty; leave the field out instead")
        normalised[key] = clean
    try:
        return canonical_json(normalised)
    except EnvelopeError as exc:
        raise InvalidUII(f"the UII cannot be encoded as canonical JSON: {exc}") from exc


def is_pseudonym(value: object) -> bool:
    """True for 64 lowercase hexadecimal characters, the only form a pseudonym takes."""
    return (
        isinstance(value, str)
        and len(value) == PSEUDONYM_HEX_LEN
        and all(c in "0123456789abcdef" for c in value)
    )


class PatientKey:
    """The patient's 32-byte secret K: source of the pseudonym and the record key pair."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes | bytearray) or len(raw) != PATIENT_KEY_LEN:
            size = len(raw) if isinstance(raw, bytes | bytearray) else type(raw).__name__
            raise EnvelopeError(f"a patient key is {PATIENT_KEY_LEN} bytes, got {size}")
        self._raw = bytes(raw)

    @classmethod
    def generate(cls) -> PatientKey:
        return cls(os.urandom(PATIENT_KEY_LEN))

    def to_bytes(self) -> bytes:
        return self._raw

    def pseudonym(self, uii: Mapping[str, str]) -> str:
        """H(K‖UII) with domain separation, as 64 lowercase hex characters."""
        digest = hashlib.sha3_256()
        digest.update(PSEUDONYM_DOMAIN + b"\x00")
        digest.update(self._raw)
        digest.update(canonical_uii(uii))
        return digest.hexdigest()

    def record_key_material(self) -> bytes:
        """The 96 HKDF output bytes: ML-KEM-768 seed (64) ‖ X25519 private key (32)."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=PRIVATE_LEN, salt=None, info=RECORD_KEY_INFO)
        return hkdf.derive(self._raw)

    def record_private_key(self) -> HybridPrivateKey:
        """The private half of the record key pair: opens every capsule sealed to the patient."""
        return HybridPrivateKey(self.record_key_material())

    def record_public_key(self) -> HybridPublicKey:
        """The public half: lets write-only uploaders seal records to the patient."""
        return self.record_private_key().public_key()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PatientKey) and hmac.compare_digest(other._raw, self._raw)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._raw).digest())

    def __repr__(self) -> str:
        return "PatientKey(<secret>)"
