"""The sealed body: a header, then AES-256-GCM segments in the STREAM construction.

Byte layout (all integers big-endian):

    header  = magic "EHRGBODY" (8) ‖ version 0x01 (1) ‖ salt (16) ‖ segment size 65536 (u32)
    body    = header ‖ segment_0 ‖ … ‖ segment_n
    segment = AES-256-GCM(segment key, nonce_i, plaintext_i, aad) = ciphertext_i ‖ tag (16)

    segment key = HKDF-SHA256(ikm=DEK, salt=salt, info=b"ehrgate/body/v1", L=32)
    nonce_i     = i as 11 bytes ‖ 0x01 for the last segment, 0x00 for every other
    aad         = SHA-256(header)

Every segment but the last holds exactly 65,536 plaintext bytes; the last holds 1 to 65,536,
or 0 only when the whole plaintext is empty (so each plaintext has exactly one body for a
given DEK and salt). Reordering changes a counter, truncation leaves a segment without the
last flag at the end, extension puts data after the segment marked last; each fails its
tag. Sealer and opener hold at most one segment of plaintext.
"""

from __future__ import annotations

import hashlib
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope._digest import Digest
from envelope.errors import EnvelopeError, InvalidEnvelope

MAGIC = b"EHRGBODY"
VERSION = 1
SALT_LEN = 16
SEGMENT_SIZE = 64 * 1024
TAG_LEN = 16
SEGMENT_CT_SIZE = SEGMENT_SIZE + TAG_LEN
DEK_LEN = 32
BODY_KEY_INFO = b"ehrgate/body/v1"
_HEADER = struct.Struct(f">{len(MAGIC)}sB{SALT_LEN}sI")
HEADER_LEN = _HEADER.size
_MAX_SEGMENTS = 1 << 88

Buffer = bytes | bytearray | memoryview


class DataKey:
    """A file's 32-byte data encryption key (DEK); made at random, never shown in a repr."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != DEK_LEN:
            raise EnvelopeError(f"a data key is {DEK_LEN} bytes")
        self._raw = raw

    @classmethod
    def generate(cls) -> DataKey:
        return cls(os.urandom(DEK_LEN))

    def to_bytes(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._raw).digest())

    def __repr__(self) -> str:
        return "DataKey(<secret>)"


def encode_header(salt: bytes) -> bytes:
    if len(salt) != SALT_LEN:
        raise EnvelopeError(f"the body salt is {SALT_LEN} bytes, got {len(salt)}")
    return _HEADER.pack(MAGIC, VERSION, salt, SEGMENT_SIZE)


def segment_key(dek: bytes, salt: bytes) -> bytes:
    """HKDF-SHA256(DEK, salt, "ehrgate/body/v1") → the 32-byte AES-256-GCM segment key."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=BODY_KEY_INFO)
    return hkdf.derive(dek)


def segment_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class BodySealer:
    """Encrypts a plaintext stream into a body, one segment at a time.

    Feed plaintext to `update` in pieces of any size and write what it returns; then write
    what `finalize` returns. The outputs, concatenated, are the body (header first). The
    SHA-256 and size of both the plaintext and the body are kept along the way.
    """

    def __init__(self, dek: DataKey) -> None:
        self._start(dek, os.urandom(SALT_LEN))

    @classmethod
    def _with_salt(cls, dek: DataKey, salt: bytes) -> BodySealer:
        """A body sealer with the salt given: for test vectors only."""
        sealer = cls.__new__(cls)
        sealer._start(dek, salt)
        return sealer

    def _start(self, dek: DataKey, salt: bytes) -> None:
        self._header = encode_header(salt)
        self._aead = AESGCM(segment_key(dek.to_bytes(), salt))
        self._aad = hashlib.sha256(self._header).digest()
        self._counter = 0
        self._tail = bytearray()  # plaintext not yet sealed: 1..SEGMENT_SIZE bytes once begun
        self._started = False
        self._finished = False
        self.plaintext_size = 0
        self.body_size = 0
        # the body is hashed here, the plaintext on a helper thread (see envelope._digest)
        self._plaintext_digest = Digest()
        self._body_digest = Digest(threaded=False)
        self._digests: tuple[str, str] | None = None

    def _next_nonce(self, last: bool) -> bytes:
        if self._counter >= _MAX_SEGMENTS:
            raise EnvelopeError("the plaintext is too long for one body")
        nonce = segment_nonce(self._counter, last)
        self._counter += 1
        return nonce

    def _seal_segment(self, plaintext: bytes, last: bool) -> bytes:
        return self._aead.encrypt(self._next_nonce(last), plaintext, self._aad)

    def _seal_run(self, run: memoryview) -> bytearray:
        """Seal whole non-last segments into one buffer, so the body is hashed in one call."""
        count = len(run) // SEGMENT_SIZE
        sealed = bytearray(count * SEGMENT_CT_SIZE)
        with memoryview(sealed) as target:
            for index in range(count):
                self._aead.encrypt_into(
                    self._next_nonce(False),
                    run[index * SEGMENT_SIZE : (index + 1) * SEGMENT_SIZE],
                    self._aad,
                    target[index * SEGMENT_CT_SIZE : (index + 1) * SEGMENT_CT_SIZE],
                )
        return sealed

    def _begin(self, out: list[Buffer]) -> None:
        if self._finished:
            raise EnvelopeError("this body is already finalised")
        if not self._started:
            self._started = True
            out.append(self._header)

    def update_segments(self, chunk: Buffer) -> list[Buffer]:
        """Like `update`, but returns the pieces without joining them (saves a copy)."""
        out: list[Buffer] = []
        self._begin(out)
        # the plaintext may be hashed later on another thread: it must not change meanwhile
        data = chunk if isinstance(chunk, bytes) else bytes(chunk)
        if data:
            self.plaintext_size += len(data)
            self._absorb(memoryview(data), out)
        for piece in out:
            self._body_digest.update(piece)
            self.body_size += len(piece)
        return out

    def _absorb(self, view: memoryview, out: list[Buffer]) -> None:
        pos = 0
        if self._tail:
            take = min(SEGMENT_SIZE - len(self._tail), len(view))
            self._tail += view[:take]
            pos = take
            if pos == len(view):
                return  # still unknown whether the buffered segment is the last one
            segment = bytes(self._tail)
            self._tail.clear()
            self._plaintext_digest.update(segment)
            out.append(self._seal_segment(segment, False))
        # a segment is sealed only once a byte after it is known, so it is never the last
        whole = (len(view) - pos - 1) // SEGMENT_SIZE * SEGMENT_SIZE
        if whole:
            run = view[pos : pos + whole]
            self._plaintext_digest.update(run)
            out.append(self._seal_run(run))
            pos += whole
        self._tail += view[pos:]

    def update(self, chunk: Buffer) -> bytes:
        """Take more plaintext; return the body bytes that are now final."""
        return b"".join(self.update_segments(chunk))

    def finalize_segments(self) -> list[Buffer]:
        """Like `finalize`, but returns the pieces without joining them."""
        out: list[Buffer] = []
        self._begin(out)
        last = bytes(self._tail)
        self._tail.clear()
        self._plaintext_digest.update(last)
        out.append(self._seal_segment(last, True))
        for piece in out:
            self._body_digest.update(piece)
            self.body_size += len(piece)
        self._finished = True
        # waits for the helper thread and ends it
        self._digests = (self._plaintext_digest.hexdigest(), self._body_digest.hexdigest())
        return out

    def finalize(self) -> bytes:
        """Seal the buffered rest as the last segment; return the final body bytes."""
        return b"".join(self.finalize_segments())

    def plaintext_sha256(self) -> str:
        return self._finished_digests()[0]

    def body_sha256(self) -> str:
        return self._finished_digests()[1]

    def _finished_digests(self) -> tuple[str, str]:
        if self._digests is None:
            raise EnvelopeError("the body is not finalised yet")
        return self._digests

    def close(self) -> None:
        """Release the hashing helpers of an abandoned sealer."""
        self._plaintext_digest.close()
        self._body_digest.close()


class BodyOpener:
    """Decrypts a body fed in pieces of any size, returning only verified plaintext.

    `update` returns plaintext of the segments that verified so far; `finalize` verifies
    the last one and, when an expected size or SHA-256 was given, the whole plaintext.
    Any failure raises InvalidEnvelope; what was returned before it must be discarded.
    """

    def __init__(
        self,
        dek: DataKey,
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
    ) -> None:
        self._dek = dek.to_bytes()
        self._aead: AESGCM | None = None
        self._aad = b""
        self._buffer = bytearray()
        self._counter = 0
        self._finished = False
        self._failed = False
        self._expected_sha256 = expected_sha256
        self._expected_size = expected_size
        self._plaintext_size = 0
        self._plaintext_digest = Digest() if expected_sha256 is not None else None

    def _fail(self, cause: Exception | None = None) -> InvalidEnvelope:
        self._failed = True
        if self._plaintext_digest is not None:
            self._plaintext_digest.close()
        error = InvalidEnvelope()
        error.__cause__ = cause
        return error

    def _open_segment(self, sealed: bytes | memoryview, last: bool) -> bytes:
        assert self._aead is not None
        try:
            plaintext = self._aead.decrypt(segment_nonce(self._counter, last), sealed, self._aad)
        except InvalidTag as exc:
            raise self._fail(exc) from exc
        self._counter += 1
        self._plaintext_size += len(plaintext)
        if self._expected_size is not None and self._plaintext_size > self._expected_size:
            raise self._fail()
        return plaintext

    def _read_header(self) -> None:
        magic, version, salt, segment_size = _HEADER.unpack_from(self._buffer)
        if magic != MAGIC or version != VERSION or segment_size != SEGMENT_SIZE:
            raise self._fail()
        self._aead = AESGCM(segment_key(self._dek, salt))
        self._aad = hashlib.sha256(self._buffer[:HEADER_LEN]).digest()
        self._buffer.clear()

    def update_pieces(self, chunk: Buffer) -> list[bytes]:
        """Like `update`, but returns the plaintext segment by segment (no joining copy)."""
        if self._failed or self._finished:
            raise self._fail()
        data = memoryview(chunk)
        if self._aead is None:
            take = min(HEADER_LEN - len(self._buffer), len(data))
            self._buffer += data[:take]
            data = data[take:]
            if len(self._buffer) < HEADER_LEN:
                return []
            self._read_header()
        out: list[bytes] = []
        # a segment is opened as "not last" only when bytes follow it
        if self._buffer:
            need = SEGMENT_CT_SIZE - len(self._buffer)
            if len(data) <= need:
                self._buffer += data
                return out
            self._buffer += data[:need]
            data = data[need:]
            out.append(self._open_segment(bytes(self._buffer), False))
            self._buffer.clear()
        count = max(0, (len(data) - 1) // SEGMENT_CT_SIZE)
        for index in range(count):
            start = index * SEGMENT_CT_SIZE
            out.append(self._open_segment(data[start : start + SEGMENT_CT_SIZE], False))
        self._buffer += data[count * SEGMENT_CT_SIZE :]
        if self._plaintext_digest is not None and out:
            self._plaintext_digest.update_many(out, sum(len(piece) for piece in out))
        return out

    def update(self, chunk: Buffer) -> bytes:
        """Take more body bytes; return the plaintext of every segment that verified."""
        return b"".join(self.update_pieces(chunk))

    def finalize(self) -> bytes:
        """Open the last segment and check the whole; raise InvalidEnvelope on any fault."""
        if self._failed or self._finished or self._aead is None:
            raise self._fail()
        rest = len(self._buffer)
        # an empty last segment is only valid as the one segment of an empty plaintext
        if rest < TAG_LEN or (rest == TAG_LEN and self._counter > 0):
            raise self._fail()
        plaintext = self._open_segment(bytes(self._buffer), True)
        self._buffer.clear()
        self._finished = True
        if self._plaintext_digest is not None:
            self._plaintext_digest.update(plaintext)
        if self._expected_size is not None and self._plaintext_size != self._expected_size:
            raise self._fail()
        if self._plaintext_digest is not None:
            digest = self._plaintext_digest.hexdigest()
            if digest != self._expected_sha256:
                raise self._fail()
        return plaintext
