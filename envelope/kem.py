"""Hybrid post-quantum public-key encryption: HPKE with ML-KEM-768 + X25519.

The suite is HPKE(MLKEM768_X25519, HKDF-SHA256, AES-256-GCM) as provided by
`cryptography`. A private key is 96 bytes: the 64-byte ML-KEM-768 seed followed by the
32-byte X25519 private key; a public key is 1,216 bytes: the 1,184-byte ML-KEM-768
encapsulation key followed by the 32-byte X25519 public key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from envelope.errors import EnvelopeError, InvalidEnvelope

MLKEM_SEED_LEN = 64
MLKEM_PUBLIC_LEN = 1184
X25519_LEN = 32
PRIVATE_LEN = MLKEM_SEED_LEN + X25519_LEN
PUBLIC_LEN = MLKEM_PUBLIC_LEN + X25519_LEN

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
    """The private half; made at random or from 96 bytes of key material."""

    __slots__ = ("_key", "_public", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != PRIVATE_LEN:
            raise EnvelopeError(f"a hybrid private key is {PRIVATE_LEN} bytes, got {len(raw)}")
        mlkem_priv = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:MLKEM_SEED_LEN])
        x_priv = x25519.X25519PrivateKey.from_private_bytes(raw[MLKEM_SEED_LEN:])
        self._raw = bytes(raw)
        self._key = hpke.MLKEM768X25519PrivateKey(mlkem_priv, x_priv)
        self._public = HybridPublicKey(
            mlkem_priv.public_key().public_bytes_raw() + x_priv.public_key().public_bytes_raw()
        )

    @classmethod
    def generate(cls) -> HybridPrivateKey:
        return cls(os.urandom(PRIVATE_LEN))

    def private_bytes(self) -> bytes:
        return self._raw

    def public_key(self) -> HybridPublicKey:
        return self._public

    def open(self, ciphertext: bytes, *, info: bytes) -> bytes:
        """Decrypt what was sealed to the public half with the same *info*."""
        try:
            return _SUITE.decrypt(ciphertext, self._key, info=info)
        except (InvalidTag, ValueError) as exc:
            raise InvalidEnvelope() from exc

    def __repr__(self) -> str:
        return f"HybridPrivateKey(public={self._public!r})"
