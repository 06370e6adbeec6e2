"""Key shares: the patient key K sealed to one grantee, bound to pseudonym and grantee id.

A key share is the raw HPKE(MLKEM768_X25519, HKDF-SHA256, AES-256-GCM) ciphertext
(encapsulated key ‖ sealed K, 1,168 bytes) of K under the grantee's encryption public key,
with

    info = b"ehrgate/key-share/v1" ‖ 0x00 ‖ pseudonym (64 ASCII hex) ‖ 0x00 ‖ grantee id (UTF-8)

so a share cannot be presented as one for another patient or another grantee. A grantee
cannot check K against the pseudonym without the UII; it can check K against the patient's
record public key (published when the patient registers), which derives from K alone:
`open_key_share(..., record_public_key=...)` does so.
"""

from __future__ import annotations

from envelope.errors import EnvelopeError, InvalidEnvelope
from envelope.kem import HybridPrivateKey, HybridPublicKey
from envelope.patient import PATIENT_KEY_LEN, PatientKey, is_pseudonym

KEY_SHARE_DOMAIN = b"ehrgate/key-share/v1"
# ML-KEM-768 ciphertext + X25519 share (1,088 + 32), then K (32) and the GCM tag (16)
KEY_SHARE_LEN = 1120 + PATIENT_KEY_LEN + 16


def key_share_info(pseudonym: str, grantee_id: str) -> bytes:
    """The HPKE info bytes that bind a key share to one patient and one grantee."""
    if not is_pseudonym(pseudonym):
        raise EnvelopeError("a pseudonym is 64 lowercase hexadecimal characters")
    if not isinstance(grantee_id, str) or not grantee_id:
        raise EnvelopeError("a key share needs a non-empty grantee id")
    return (
        KEY_SHARE_DOMAIN
        + b"\x00"
        + pseudonym.encode("ascii")
        + b"\x00"
        + grantee_id.encode("utf-8")
    )


def seal_key_share(
    patient_key: PatientKey, *, pseudonym: str, grantee_id: str, grantee_key: HybridPublicKey
) -> bytes:
    """Seal K to *grantee_key*; only the grantee can open it, and only for this pseudonym."""
    return grantee_key.seal(patient_key.to_bytes(), info=key_share_info(pseudonym, grantee_id))


def open_key_share(
    share: bytes,
    key: HybridPrivateKey,
    *,
    pseudonym: str,
    grantee_id: str,
    record_public_key: HybridPublicKey | None = None,
) -> PatientKey:
    """Recover K from a share sealed to *key*; every failure raises InvalidEnvelope.

    With *record_public_key* (the patient's, from the ledger) the recovered K must also
    derive that key, which proves it is the patient's K and not some other 32 bytes; the
    K returned derives its record key by the version (1 or 2) that matched. Without it, K
    derives version 2 record keys.
    """
    try:
        info = key_share_info(pseudonym, grantee_id)
    except EnvelopeError as exc:
        raise InvalidEnvelope() from exc
    if not isinstance(share, bytes | bytearray) or len(share) != KEY_SHARE_LEN:
        raise InvalidEnvelope()
    raw = key.open(bytes(share), info=info)
    if len(raw) != PATIENT_KEY_LEN:
        raise InvalidEnvelope()
    patient_key = PatientKey(raw)
    if record_public_key is None:
        return patient_key
    matched = patient_key.for_record_key(record_public_key)
    if matched is None:
        raise InvalidEnvelope()
    return matched
