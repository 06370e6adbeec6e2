"""Helpers every backend shares: content-addressed keys, chunked reading, hashing, checking."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from storage.errors import IntegrityError, InvalidLocator
from storage.types import Source

#: Chunk size for reading sources and streaming bodies out: big enough that per-chunk
#: overhead is negligible, small enough that memory stays bounded.
CHUNK_SIZE = 1024 * 1024

BLOB_PREFIX = "blobs/"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits, else raise InvalidLocator."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidLocator(f"not a SHA-256 (64 lowercase hex digits): {sha256!r}")
    return sha256


def blob_key(sha256: str) -> str:
    """The content-addressed key of a body: ``blobs/ab/<sha256>``."""
    check_sha256(sha256)
    return f"{BLOB_PREFIX}{sha256[:2]}/{sha256}"


def sha256_of_key(key: str) -> str | None:
    """The SHA-256 in a key made by ``blob_key``, or None if ``key`` is not one."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != BLOB_PREFIX:
        return None
    sha = parts[2]
    if not _SHA256.fullmatch(sha) or parts[1] != sha[:2]:
        return None
    return sha


def iter_source(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield non-empty byte chunks from a binary file object or an iterable of chunks."""
    read = getattr(source, "read", None)
    if callable(read):
        file: BinaryIO = source  # type: ignore[assignment]
        while chunk := file.read(chunk_size):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError("put() needs a binary stream; open the file in 'rb' mode")
            yield bytes(chunk)
        return
    if isinstance(source, bytes | bytearray | memoryview | str):
        raise TypeError("put() takes a binary stream or an iterable of bytes chunks, not bytes")
    chunks: Iterable[bytes] = source
    for chunk in chunks:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"put() got a chunk of type {type(chunk).__name__}, not bytes")
        if chunk:
            yield bytes(chunk)


class Digest:
    """A running SHA-256 and byte count over the chunks that pass through it."""

    __slots__ = ("_hash", "size")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> bytes:
        self._hash.update(chunk)
        self.size += len(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def verified(
    chunks: Iterable[bytes], *, sha256: str, size: int | None, store: str, where: str
) -> Iterator[bytes]:
    """Pass ``chunks`` through, checking their SHA-256 and size.

    The last chunk is held back until the check has passed, so a consumer never receives a
    complete-looking body that does not match; a body longer than ``size`` is cut off at
    once rather than read to the end.
    """
    digest = Digest()
    held: bytes | None = None
    for chunk in chunks:
        digest.update(chunk)
        if size is not None and digest.size > size:
            raise IntegrityError(
                f"store {store!r} returned more than the expected {size} bytes for {where}",
                store=store,
            )
        if held is not None:
            yield held
        held = chunk
    if size is not None and digest.size != size:
        raise IntegrityError(
            f"store {store!r} returned {digest.size} bytes for {where}, expected {size}",
            store=store,
        )
    actual = digest.hexdigest()
    if actual != sha256:
        raise IntegrityError(
            f"store {store!r} returned a body for {where} whose SHA-256 is {actual}, "
            f"expected {sha256}: that copy is corrupt or was swapped",
            store=store,
        )
    if held is not None:
        yield held


def check_put_digest(digest: Digest, expected: str | None, store: str) -> str:
    """The body's SHA-256; IntegrityError if the caller announced a different one."""
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        raise IntegrityError(
            f"the body sent to store {store!r} has SHA-256 {actual}, "
            f"but the upload announced {expected}",
            store=store,
        )
    return actual


class BodyStream(Iterator[bytes]):
    """The iterator ``get`` returns: chunks of a body, plus ``close()`` to release the
    connection or file early. It closes itself when exhausted, on error and when dropped,
    so a caller that stops reading half-way leaks nothing."""

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], object]) -> None:
        self._chunks = chunks
        self._release: Callable[[], object] | None = release

    def __iter__(self) -> BodyStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            close = getattr(self._chunks, "close", None)
            if callable(close):
                close()
            release()

    def __enter__(self) -> BodyStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
