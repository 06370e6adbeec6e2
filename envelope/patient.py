"""The patient key K, the pseudonym H(K‖UII) and the record key pair derived from K.

- canonical UII: every value NFC-normalised, then runs of whitespace (characters for which
  ``str.isspace()`` is true) collapsed to one space and stripped at both ends, then
  case-folded (``str.casefold``); keys are kept exactly as given; the mapping is encoded as
  RFC 8785 canonical JSON.
- pseudonym = lowercase hex SHA3-256(b"ehrgate/pseudonym/v1" ‖ 0x00 ‖ K ‖ canonical UII).
- record key, version 2 (every new K): the X-Wing seed
  HKDF-SHA256(ikm=K, salt=None, info=b"ehrgate/record-key/v2", L=32).
- record key, version 1 (patients registered before version 2, whose record public key is
  on the ledger): HKDF-SHA256(ikm=K, salt=None, info=b"ehrgate/record-key/v1", L=96), read
  as the expanded key: a 64-byte ML-KEM-768 seed followed by a 32-byte X25519 private key.
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
from envelope.kem import V1_PRIVATE_LEN, HybridPrivateKey, HybridPublicKey
from envelope.xwing import SEED_LEN

PATIENT_KEY_LEN = 32
PSEUDONYM_DOMAIN = b"ehrgate/pseudonym/v1"
RECORD_KEY_INFO_V1 = b"ehrgate/record-key/v1"
RECORD_KEY_INFO_V2 = b"ehrgate/record-key/v2"
RECORD_KEY_VERSIONS = (1, 2)
RECORD_KEY_VERSION = 2
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


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


class PatientKey:
    """The patient's 32-byte secret K: source of the pseudonym and the record key pair.

    *record_key_version* says which derivation gives the patient's record key: 2 (an X-Wing
    seed) for every new K, 1 for a patient registered before key format version 2. A key
    share carries K alone; `for_record_key` finds the version from the registered public key.
    """

    __slots__ = ("_raw", "_record_key_version")

    def __init__(self, raw: bytes, *, record_key_version: int = RECORD_KEY_VERSION) -> None:
        if not isinstance(raw, bytes | bytearray) or len(raw) != PATIENT_KEY_LEN:
            size = len(raw) if isinstance(raw, bytes | bytearray) else type(raw).__name__
            raise EnvelopeError(f"a patient key is {PATIENT_KEY_LEN} bytes, got {size}")
        if record_key_version not in RECORD_KEY_VERSIONS:
            raise EnvelopeError(f"record key version must be 1 or 2, got {record_key_version!r}")
        self._raw = bytes(raw)
        self._record_key_version = record_key_version

    @classmethod
    def generate(cls) -> PatientKey:
        return cls(os.urandom(PATIENT_KEY_LEN))

    def to_bytes(self) -> bytes:
        return self._raw

    @property
    def record_key_version(self) -> int:
        return self._record_key_version

    def pseudonym(self, uii: Mapping[str, str]) -> str:
        """H(K‖UII) with domain separation, as 64 lowercase hex characters."""
        digest = hashlib.sha3_256()
        digest.update(PSEUDONYM_DOMAIN + b"\x00")
        digest.update(self._raw)
        digest.update(canonical_uii(uii))
        return digest.hexdigest()

    def record_key_seed(self) -> bytes:
        """The version 2 record key: a 32-byte X-Wing seed derived from K."""
        return _hkdf(self._raw, RECORD_KEY_INFO_V2, SEED_LEN)

    def record_key_material(self) -> bytes:
        """The version 1 record key: 96 bytes, ML-KEM-768 seed (64) ‖ X25519 private key (32)."""
        return _hkdf(self._raw, RECORD_KEY_INFO_V1, V1_PRIVATE_LEN)

    def record_private_key(self) -> HybridPrivateKey:
        """The private half of the record key pair: opens every capsule sealed to the patient."""
        if self._record_key_version == 1:
            return HybridPrivateKey(self.record_key_material())
        return HybridPrivateKey(self.record_key_seed())

    def record_public_key(self) -> HybridPublicKey:
        """The public half: lets write-only uploaders seal records to the patient."""
        return self.record_private_key().public_key()

    def with_record_key_version(self, version: int) -> PatientKey:
        """The same K, deriving its record key by *version*."""
        return PatientKey(self._raw, record_key_version=version)

    def for_record_key(self, public_key: HybridPublicKey) -> PatientKey | None:
        """The same K with the record key version whose public key is *public_key*, or None
        if K derives no such key (so it is not this patient's K)."""
        for version in (RECORD_KEY_VERSION, 1):
            candidate = self.with_record_key_version(version)
            derived = candidate.record_public_key().to_bytes()
            if hmac.compare_digest(derived, public_key.to_bytes()):
                return candidate
        return None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PatientKey)
            and hmac.compare_digest(other._raw, self._raw)
            and other._record_key_version == self._record_key_version
        )

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._raw).digest())

    def __repr__(self) -> str:
        return f"PatientKey(<secret>, record_key_version={self._record_key_version})"
