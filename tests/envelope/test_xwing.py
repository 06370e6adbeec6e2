"""envelope.xwing and HybridPrivateKey: the two private key forms and clear refusals."""

from __future__ import annotations

import os

import pytest

from envelope import EnvelopeError, HybridPrivateKey, InvalidEnvelope
from envelope.xwing import (
    CIPHERTEXT_LEN,
    LABEL,
    decapsulate,
    encapsulate,
    expand_seed,
)


def test_the_label_is_the_drafts() -> None:
    assert LABEL.hex() == "5c2e2f2f5e5c"
    assert LABEL == b"\\./" + b"/^\\"


def test_a_seed_and_its_expansion_are_the_same_key_pair() -> None:
    seed = os.urandom(32)
    from_seed = HybridPrivateKey(seed)
    expanded = HybridPrivateKey(expand_seed(seed))
    assert from_seed.is_seed
    assert not expanded.is_seed
    assert from_seed.public_key() == expanded.public_key()
    assert from_seed.private_bytes() == seed
    ciphertext, shared = encapsulate(from_seed.public_key().to_bytes())
    assert decapsulate(expanded.key_parts, ciphertext) == shared


def test_generated_keys_are_seeds() -> None:
    key = HybridPrivateKey.generate()
    assert key.is_seed
    assert len(key.private_bytes()) == 32
    assert "seed" in repr(key)


@pytest.mark.parametrize("length", [0, 31, 33, 64, 95, 97, 2400])
def test_other_private_key_sizes_are_refused(length: int) -> None:
    with pytest.raises(EnvelopeError, match="32-byte X-Wing seed"):
        HybridPrivateKey(bytes(length))


def test_bad_kem_inputs() -> None:
    key = HybridPrivateKey.generate()
    with pytest.raises(EnvelopeError, match="32 bytes"):
        expand_seed(bytes(31))
    with pytest.raises(EnvelopeError, match="1216 bytes"):
        encapsulate(bytes(100))
    with pytest.raises(InvalidEnvelope):
        decapsulate(key.key_parts, bytes(CIPHERTEXT_LEN - 1))
    with pytest.raises(InvalidEnvelope):  # an all-zero X25519 share gives the zero secret
        decapsulate(key.key_parts, bytes(CIPHERTEXT_LEN))
