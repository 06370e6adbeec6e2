"""Hybrid post-quantum public-key encryption: HPKE with the X-Wing KEM (ML-KEM-768 + X25519).

The suite is HPKE(MLKEM768_X25519, HKDF-SHA256, AES-256-GCM) as provided by
`cryptography`; its KEM is X-Wing (HPKE KEM id 0x647A, see `envelope.xwing`). A public key
is 1,216 bytes: the 1,184-byte ML-KEM-768 encapsulation key followed by the 32-byte X25519
public key. A private key takes one of two forms:

- version 2, the standard X-Wing private key: a 32-byte seed, expanded with SHAKE256 into
  the ML-KEM-768 seed and the X25519 private key. Every new key has this form, and stock
  X-Wing implementations load it as it is.
- version 1 (read, and kept for keys made before version 2): the 96 expanded bytes
  themselves, ML-KEM-768 seed d‖z (64) ‖ X25519 private key (32). No seed can be recovered
  from them, so such a key stays in this form until re-keying replaces it.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from envelope.errors import EnvelopeError, InvalidEnvelope
from envelope.xwing import (
    EXPANDED_LEN,
    MLKEM_PUBLIC_LEN,
    PUBLIC_LEN,
    SEED_LEN,
    KeyParts,
    expand_seed,
    key_parts,
    public_key_bytes,
)

V1_PRIVATE_LEN = EXPANDED_LEN

_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class HybridPublicKey:
    """The public half: anyone holding it can seal to the private half."""

    __slots__ = ("_key", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != PUBLIC_LEN:
            raise EnvelopeError(f"a hybrid public key is {PUBLIC_LEN} bytes, got {len(raw)}")
        try:
            mlkem_pub = mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM_PUBLIC_LEN])
            x_pub = x25519.X25519PublicKey.from_public_bytes(raw[MLKEM_PUBLIC_LEN:])
        except ValueError as exc:
            raise EnvelopeError("not a valid ML-KEM-768 + X25519 public key") from exc
        self._raw = bytes(raw)
        self._key = hpke.MLKEM768X25519PublicKey(mlkem_pub, x_pub)

    def to_bytes(self) -> bytes:
        return self._raw

    def seal(self, plaintext: bytes, *, info: bytes) -> bytes:
        """Encrypt *plaintext* to this key; *info* binds the context (who, for what)."""
        return _SUITE.encrypt(plaintext, self._key, info=info)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HybridPublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"HybridPublicKey({self._raw[-8:].hex()}…)"


class HybridPrivateKey:
    """The private half: a 32-byte X-Wing seed (version 2) or 96 expanded bytes (version 1)."""

    __slots__ = ("_key", "_parts", "_public", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) == SEED_LEN:
            expanded = expand_seed(bytes(raw))
        elif len(raw) == V1_PRIVATE_LEN:
            expanded = bytes(raw)
        else:
            raise EnvelopeError(
                f"a hybrid private key is a {SEED_LEN}-byte X-Wing seed (or, made before "
                f"key format version 2, {V1_PRIVATE_LEN} expanded bytes), got {len(raw)}"
            )
        self._raw = bytes(raw)
        self._parts = key_parts(expanded)
        self._key = hpke.MLKEM768X25519PrivateKey(*self._parts)
        self._public = HybridPublicKey(public_key_bytes(self._parts))

    @classmethod
    def generate(cls) -> HybridPrivateKey:
        """A new random key, as a standard X-Wing seed."""
        return cls(os.urandom(SEED_LEN))

    def private_bytes(self) -> bytes:
        """The stored form: the 32-byte seed, or the 96 bytes of a version 1 key."""
        return self._raw

    @property
    def is_seed(self) -> bool:
        """True for a standard X-Wing seed (version 2), False for a version 1 expanded key."""
        return len(self._raw) == SEED_LEN

    @property
    def key_parts(self) -> KeyParts:
        """The ML-KEM-768 and X25519 private keys (for `envelope.xwing.decapsulate`)."""
        return self._parts

    def public_key(self) -> HybridPublicKey:
        return self._public

    def open(self, ciphertext: bytes, *, info: bytes) -> bytes:
        """Decrypt what was sealed to the public half with the same *info*."""
        try:
            return _SUITE.decrypt(ciphertext, self._key, info=info)
        except (InvalidTag, ValueError) as exc:
            raise InvalidEnvelope() from exc

    def __repr__(self) -> str:
        form = "seed" if self.is_seed else "v1"
        return f"HybridPrivateKey({form}, public={self._public!r})"
