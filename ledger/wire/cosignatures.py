"""C2SP tlog-cosignature v1, Ed25519 (c2sp.org/tlog-cosignature): a witness's signature.

A cosignature is a note signature on a checkpoint, of signature type 0x04. Its key ID is
SHA-256(name ‖ 0x0A ‖ 0x04 ‖ 32-byte public key)[:4]; its signature bytes (after the key
ID) are a `timestamped_signature`: the POSIX time of signing as 8 bytes big-endian,
then the 64-byte Ed25519 signature over

    cosignature/v1
    time <timestamp, decimal>
    <the whole checkpoint note text, extension lines included>

It states: as of that time, this is the largest tree of the origin's log the cosigner
has seen, and it is consistent with every earlier one it saw.
"""

from __future__ import annotations

from envelope import InvalidSignature, SigningKey
from ledger.errors import MalformedNote
from ledger.wire.notes import (
    ALG_COSIGNATURE_V1,
    NoteKeyVerifier,
    NoteSignature,
    check_note_text,
    decode_private_key,
    encode_private_key,
)

HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
SIGNATURE_LEN = 8 + 64


def cosigned_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    """The exact bytes an Ed25519 cosignature signs."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise MalformedNote(f"a cosignature timestamp {timestamp} is out of range")
    return HEADER + b"time %d\n" % timestamp + checkpoint_text


def cosignature_timestamp(signature: NoteSignature) -> int:
    """The time a cosignature was made (POSIX seconds)."""
    if len(signature.signature) != SIGNATURE_LEN:
        raise MalformedNote(f"a cosignature is {SIGNATURE_LEN} bytes after the key ID")
    return int.from_bytes(signature.signature[:8], "big")


class CosignatureVerifier(NoteKeyVerifier):
    """Verifies cosignature/v1 signatures (type 0x04) of one cosigner."""

    alg = ALG_COSIGNATURE_V1

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != SIGNATURE_LEN:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        try:
            self.public_key.verify_bytes(cosigned_message(text, timestamp), signature[8:])
        except InvalidSignature:
            return False
        return True


class Cosigner:
    """A witness's cosigning key under its name."""

    def __init__(self, name: str, key: SigningKey) -> None:
        self.key = key
        self.verifier = CosignatureVerifier(name, key.verify_key)

    @property
    def name(self) -> str:
        return self.verifier.name

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls(name, SigningKey.generate())

    @classmethod
    def from_private_key(cls, text: str) -> Cosigner:
        return cls(*decode_private_key(text, ALG_COSIGNATURE_V1))

    def private_key(self) -> str:
        return encode_private_key(self.name, ALG_COSIGNATURE_V1, self.key)

    def cosign(self, checkpoint_text: str, timestamp: int) -> NoteSignature:
        """The cosignature line of a checkpoint's note text at *timestamp* (> 0)."""
        if timestamp <= 0:
            raise MalformedNote("a checkpoint cosignature carries a time after the epoch")
        message = cosigned_message(check_note_text(checkpoint_text).encode("utf-8"), timestamp)
        signed = timestamp.to_bytes(8, "big") + self.key.sign_bytes(message)
        return NoteSignature(self.name, self.verifier.key_id, signed)
