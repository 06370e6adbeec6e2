"""The X-Wing KEM (draft-connolly-cfrg-xwing-kem), written out from the draft.

X-Wing is the hybrid ML-KEM-768 + X25519 KEM that HPKE names 0x647A and that
`cryptography`'s ``hpke.KEM.MLKEM768_X25519`` implements. Its private key is a 32-byte seed:

    expanded = SHAKE256(seed, 96 bytes)
    ML-KEM-768 key pair = KeyGen_internal(d = expanded[0:32], z = expanded[32:64])
    X25519 private key  = expanded[64:96]
    public key          = ML-KEM-768 encapsulation key (1,184) ‖ X25519 public key (32)

and its shared secret is

    SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ "\\.//^\\")      (the 6-byte label comes last)

for ciphertext ct_M (1,088) ‖ ct_X (32). ehrgate seals and opens through `cryptography`'s
HPKE; this module gives the seed expansion every hybrid key needs, and the KEM operations
spelled out, so that tests can check that library, ehrgate's keys and stock X-Wing
implementations against the draft and against each other.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from envelope.errors import EnvelopeError, InvalidEnvelope

SEED_LEN = 32
EXPANDED_LEN = 96
MLKEM_SEED_LEN = 64
MLKEM_PUBLIC_LEN = 1184
MLKEM_CIPHERTEXT_LEN = 1088
X25519_LEN = 32
PUBLIC_LEN = MLKEM_PUBLIC_LEN + X25519_LEN
CIPHERTEXT_LEN = MLKEM_CIPHERTEXT_LEN + X25519_LEN
SHARED_SECRET_LEN = 32
LABEL = b"\\.//^\\"  # 5c2e2f2f5e5c

KeyParts = tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]


def expand_seed(seed: bytes) -> bytes:
    """SHAKE256(seed, 96 bytes): ML-KEM-768 seed d‖z (64) then the X25519 private key (32)."""
    if len(seed) != SEED_LEN:
        raise EnvelopeError(f"an X-Wing seed is {SEED_LEN} bytes, got {len(seed)}")
    return hashlib.shake_256(seed).digest(EXPANDED_LEN)


def key_parts(expanded: bytes) -> KeyParts:
    """The ML-KEM-768 and X25519 private keys of 96 bytes of expanded key material."""
    if len(expanded) != EXPANDED_LEN:
        raise EnvelopeError(f"expanded X-Wing key material is {EXPANDED_LEN} bytes")
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:MLKEM_SEED_LEN]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[MLKEM_SEED_LEN:]),
    )


def public_key_bytes(parts: KeyParts) -> bytes:
    """pk_M ‖ pk_X, the 1,216-byte X-Wing encapsulation key."""
    mlkem_key, x_key = parts
    return mlkem_key.public_key().public_bytes_raw() + x_key.public_key().public_bytes_raw()


def combiner(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    """SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ label): the X-Wing shared secret."""
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + LABEL).digest()


def encapsulate(public_key: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, shared secret) for the X-Wing encapsulation key *public_key*."""
    if len(public_key) != PUBLIC_LEN:
        raise EnvelopeError(f"an X-Wing public key is {PUBLIC_LEN} bytes, got {len(public_key)}")
    try:
        pk_m = mlkem.MLKEM768PublicKey.from_public_bytes(public_key[:MLKEM_PUBLIC_LEN])
        pk_x = x25519.X25519PublicKey.from_public_bytes(public_key[MLKEM_PUBLIC_LEN:])
    except ValueError as exc:
        raise EnvelopeError("not a valid X-Wing public key") from exc
    ephemeral = x25519.X25519PrivateKey.generate()
    ct_x = ephemeral.public_key().public_bytes_raw()
    ss_x = ephemeral.exchange(pk_x)
    ss_m, ct_m = pk_m.encapsulate()
    return ct_m + ct_x, combiner(ss_m, ss_x, ct_x, public_key[MLKEM_PUBLIC_LEN:])


def decapsulate(parts: KeyParts, ciphertext: bytes) -> bytes:
    """The shared secret of *ciphertext* under the private key *parts*.

    Like ML-KEM, X-Wing rejects implicitly: a changed ML-KEM ciphertext yields an unrelated
    secret, not an error. Only a malformed ciphertext (wrong size, or an X25519 share that
    gives the all-zero secret) raises InvalidEnvelope.
    """
    if len(ciphertext) != CIPHERTEXT_LEN:
        raise InvalidEnvelope()
    mlkem_key, x_key = parts
    ct_m, ct_x = ciphertext[:MLKEM_CIPHERTEXT_LEN], ciphertext[MLKEM_CIPHERTEXT_LEN:]
    try:
        ss_m = mlkem_key.decapsulate(ct_m)
        ss_x = x_key.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    except ValueError as exc:
        raise InvalidEnvelope() from exc
    return combiner(ss_m, ss_x, ct_x, x_key.public_key().public_bytes_raw())
