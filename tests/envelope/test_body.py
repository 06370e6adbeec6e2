"""The sealed body: round trips at every size that matters, and every kind of tampering fails."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from hypothesis import given, settings, strategies as st

from envelope import EnvelopeError, InvalidEnvelope
from envelope.body import (
    HEADER_LEN,
    SEGMENT_CT_SIZE,
    SEGMENT_SIZE,
    TAG_LEN,
    BodyOpener,
    BodySealer,
    DataKey,
)
from tests.envelope.conftest import pattern

DEK = DataKey(hashlib.sha256(b"body tests").digest())
BOUNDARY_SIZES = [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE]


def seal_bytes(plaintext: bytes, chunk: int = 1 << 20, dek: DataKey = DEK) -> bytes:
    sealer = BodySealer(dek)
    pieces = [sealer.update(plaintext[i : i + chunk]) for i in range(0, len(plaintext), chunk)]
    return b"".join(pieces) + sealer.finalize()


def open_bytes(
    body: bytes,
    chunk: int = 1 << 20,
    dek: DataKey = DEK,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
) -> bytes:
    opener = BodyOpener(dek, expected_sha256=expected_sha256, expected_size=expected_size)
    pieces = [opener.update(body[i : i + chunk]) for i in range(0, len(body), chunk)]
    return b"".join(pieces) + opener.finalize()


def segments(body: bytes) -> list[bytes]:
    rest = body[HEADER_LEN:]
    return [rest[i : i + SEGMENT_CT_SIZE] for i in range(0, len(rest), SEGMENT_CT_SIZE)]


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_round_trip_at_segment_boundaries(size: int) -> None:
    plaintext = os.urandom(size)
    body = seal_bytes(plaintext)
    full, rest = divmod(size, SEGMENT_SIZE)
    count = max(1, full + (1 if rest else 0))
    assert len(body) == HEADER_LEN + size + count * TAG_LEN
    assert open_bytes(body) == plaintext


@settings(max_examples=40, deadline=None)
@given(
    size=st.one_of(
        st.integers(0, 300),
        st.sampled_from([k * SEGMENT_SIZE + d for k in range(1, 4) for d in (-2, -1, 0, 1, 2)]),
    ),
    seal_chunk=st.integers(1, 3 * SEGMENT_SIZE),
    open_chunk=st.integers(1, 3 * SEGMENT_SIZE),
)
def test_round_trip_in_any_chunking(size: int, seal_chunk: int, open_chunk: int) -> None:
    plaintext = pattern(size)
    body = seal_bytes(plaintext, seal_chunk)
    assert len(body) == len(seal_bytes(plaintext))
    assert open_bytes(body, open_chunk) == plaintext


def test_chunking_does_not_change_the_body() -> None:
    plaintext = pattern(2 * SEGMENT_SIZE + 5)
    sealer_a, sealer_b = (
        BodySealer._with_salt(DEK, bytes(16)),
        BodySealer._with_salt(DEK, bytes(16)),
    )
    whole = sealer_a.update(plaintext) + sealer_a.finalize()
    pieces = b"".join(
        sealer_b.update(plaintext[i : i + 1000]) for i in range(0, len(plaintext), 1000)
    )
    assert pieces + sealer_b.finalize() == whole


def test_sealer_reports_hashes_and_sizes() -> None:
    plaintext = pattern(SEGMENT_SIZE + 7)
    sealer = BodySealer(DEK)
    body = sealer.update(plaintext) + sealer.finalize()
    assert sealer.plaintext_sha256() == hashlib.sha256(plaintext).hexdigest()
    assert sealer.body_sha256() == hashlib.sha256(body).hexdigest()
    assert (sealer.plaintext_size, sealer.body_size) == (len(plaintext), len(body))


def test_large_input_hashed_on_a_helper_thread_gives_the_same_hashes() -> None:
    plaintext = os.urandom(5 * 1024 * 1024 + 3)
    sealer = BodySealer(DEK)
    body = b"".join(
        sealer.update(plaintext[i : i + 2**20]) for i in range(0, len(plaintext), 2**20)
    )
    body += sealer.finalize()
    assert sealer.plaintext_sha256() == hashlib.sha256(plaintext).hexdigest()
    assert sealer.body_sha256() == hashlib.sha256(body).hexdigest()


def test_mutable_input_is_copied_before_hashing() -> None:
    buffer = bytearray(pattern(2 * 1024 * 1024))
    sealer = BodySealer(DEK)
    body = sealer.update(buffer)
    buffer[:] = bytes(len(buffer))  # the caller reuses its buffer at once
    body += sealer.finalize()
    expected = pattern(2 * 1024 * 1024)
    assert sealer.plaintext_sha256() == hashlib.sha256(expected).hexdigest()
    assert open_bytes(body) == expected


def test_empty_plaintext_is_one_empty_last_segment() -> None:
    body = seal_bytes(b"")
    assert len(body) == HEADER_LEN + TAG_LEN
    assert open_bytes(body) == b""


def test_salt_is_fresh_for_every_body() -> None:
    assert seal_bytes(b"same")[:HEADER_LEN] != seal_bytes(b"same")[:HEADER_LEN]


def test_sealer_refuses_use_after_finalize() -> None:
    sealer = BodySealer(DEK)
    sealer.finalize()
    with pytest.raises(EnvelopeError):
        sealer.update(b"more")
    with pytest.raises(EnvelopeError):
        sealer.finalize()


def test_hashes_are_unavailable_before_finalize() -> None:
    sealer = BodySealer(DEK)
    sealer.update(b"x")
    with pytest.raises(EnvelopeError):
        sealer.body_sha256()
    sealer.close()


# --- tampering ------------------------------------------------------------------------

THREE_SEGMENTS = pattern(2 * SEGMENT_SIZE + 1000)
BODY = seal_bytes(THREE_SEGMENTS)
SEGMENT_STARTS = [HEADER_LEN + i * SEGMENT_CT_SIZE for i in range(3)]
SEGMENT_ENDS = [*SEGMENT_STARTS[1:], len(BODY)]


def flipped(body: bytes, position: int, bit: int = 0) -> bytes:
    changed = bytearray(body)
    changed[position] ^= 1 << bit
    return bytes(changed)


def assert_refused(
    body: bytes,
    dek: DataKey = DEK,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
) -> None:
    with pytest.raises(InvalidEnvelope):
        open_bytes(body, dek=dek, expected_sha256=expected_sha256, expected_size=expected_size)


@pytest.mark.parametrize("position", range(HEADER_LEN))
def test_flipped_bit_in_every_header_byte_fails(position: int) -> None:
    assert_refused(flipped(BODY, position, position % 8))


@pytest.mark.parametrize("segment", range(3))
@pytest.mark.parametrize(
    "where", ["first byte", "middle", "last ciphertext byte", "tag start", "tag end"]
)
def test_flipped_bit_in_each_segment_and_tag_fails(segment: int, where: str) -> None:
    start, end = SEGMENT_STARTS[segment], SEGMENT_ENDS[segment]
    position = {
        "first byte": start,
        "middle": (start + end) // 2,
        "last ciphertext byte": end - TAG_LEN - 1,
        "tag start": end - TAG_LEN,
        "tag end": end - 1,
    }[where]
    assert_refused(flipped(BODY, position, 7))


@pytest.mark.parametrize("cut", [SEGMENT_STARTS[1], SEGMENT_STARTS[2]], ids=["after 1", "after 2"])
def test_truncation_at_a_segment_boundary_fails(cut: int) -> None:
    assert_refused(BODY[:cut])


@pytest.mark.parametrize(
    "cut",
    [
        0,
        5,
        HEADER_LEN,
        HEADER_LEN + 1,
        HEADER_LEN + TAG_LEN,
        SEGMENT_STARTS[1] + 100,
        len(BODY) - 1,
    ],
)
def test_truncation_inside_a_segment_or_header_fails(cut: int) -> None:
    assert_refused(BODY[:cut])


def test_truncation_yields_only_verified_segments_then_fails() -> None:
    opener = BodyOpener(DEK)
    released = opener.update(BODY[: SEGMENT_STARTS[2]])
    assert released == THREE_SEGMENTS[:SEGMENT_SIZE]  # the second is held until more arrives
    with pytest.raises(InvalidEnvelope):
        opener.finalize()


def test_reordered_segments_fail() -> None:
    header, parts = BODY[:HEADER_LEN], segments(BODY)
    assert_refused(header + parts[1] + parts[0] + parts[2])


def test_appended_segment_fails() -> None:
    header, parts = BODY[:HEADER_LEN], segments(BODY)
    assert_refused(BODY + parts[1])
    assert_refused(header + parts[0] + parts[1] + parts[1] + parts[2])


def test_appended_garbage_fails() -> None:
    assert_refused(BODY + b"\x00")
    assert_refused(BODY + os.urandom(SEGMENT_CT_SIZE))


def test_trailing_empty_segment_is_refused() -> None:
    """An empty last segment after data would be a second encoding of the same plaintext."""
    sealer = BodySealer._with_salt(DEK, bytes(16))
    body = sealer.update(pattern(10)) + sealer.finalize()
    assert open_bytes(body) == pattern(10)
    # rebuild as segment 0 (not last) + an empty last segment, with the same key
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from envelope.body import encode_header, segment_key, segment_nonce

    header = encode_header(bytes(16))
    aad = hashlib.sha256(header).digest()
    aead = AESGCM(segment_key(DEK.to_bytes(), bytes(16)))
    forged = (
        header
        + aead.encrypt(segment_nonce(0, False), pattern(10), aad)
        + aead.encrypt(segment_nonce(1, True), b"", aad)
    )
    assert_refused(forged)


def test_segments_are_bound_to_the_header() -> None:
    """Right key and nonces but no header hash as associated data: refused."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from envelope.body import encode_header, segment_key, segment_nonce

    header = encode_header(bytes(16))
    aead = AESGCM(segment_key(DEK.to_bytes(), bytes(16)))
    assert_refused(header + aead.encrypt(segment_nonce(0, True), b"unbound", b""))


def test_segment_from_another_body_fails() -> None:
    other = seal_bytes(THREE_SEGMENTS)  # same DEK, other salt
    assert_refused(BODY[: SEGMENT_STARTS[1]] + other[SEGMENT_STARTS[1] :])


def test_wrong_data_key_fails() -> None:
    assert_refused(BODY, dek=DataKey(os.urandom(32)))


def test_expected_hash_and_size_are_enforced() -> None:
    right = hashlib.sha256(THREE_SEGMENTS).hexdigest()
    assert open_bytes(BODY, expected_sha256=right, expected_size=len(THREE_SEGMENTS))
    assert_refused(BODY, expected_sha256="0" * 64)
    assert_refused(BODY, expected_size=len(THREE_SEGMENTS) - 1)
    assert_refused(BODY, expected_size=len(THREE_SEGMENTS) + 1)


def test_opener_refuses_use_after_failure() -> None:
    opener = BodyOpener(DEK)
    with pytest.raises(InvalidEnvelope):
        opener.update(flipped(BODY, HEADER_LEN + 3))
    with pytest.raises(InvalidEnvelope):
        opener.update(b"")
    with pytest.raises(InvalidEnvelope):
        opener.finalize()


def test_garbage_is_refused() -> None:
    assert_refused(os.urandom(1000))
    assert_refused(b"")


def test_data_key_is_never_shown() -> None:
    assert DEK.to_bytes().hex() not in repr(DEK)
    with pytest.raises(EnvelopeError):
        DataKey(b"short")


def test_helper_threads_end_with_the_sealer() -> None:
    before = threading.active_count()
    finished, abandoned = BodySealer(DEK), BodySealer(DEK)
    for sealer in (finished, abandoned):
        sealer.update(bytes(3 * 1024 * 1024))
    finished.finalize()
    abandoned.close()
    assert threading.active_count() == before


def test_sealer_and_opener_hold_at_most_one_segment() -> None:
    """The memory bound: whatever the piece sizes, at most one segment waits inside."""
    plaintext = os.urandom(3 * 1024 * 1024 + 17)
    sealer = BodySealer(DEK)
    body = bytearray()
    position = 0
    for size in [1, SEGMENT_SIZE - 1, SEGMENT_SIZE + 1, 2**20, 2**20 + 3] * 3:
        piece = plaintext[position : position + size]
        position += len(piece)
        body += sealer.update(piece)
        assert len(sealer._tail) <= SEGMENT_SIZE
    body += sealer.update(plaintext[position:]) + sealer.finalize()
    opener = BodyOpener(DEK)
    opened = bytearray()
    for start in range(0, len(body), 300_001):
        opened += opener.update(body[start : start + 300_001])
        assert len(opener._buffer) <= SEGMENT_CT_SIZE
    assert bytes(opened + opener.finalize()) == plaintext
