"""Moving bytes between the async HTTP side and the blocking stores, with bounded memory.

Uploads: `RequestBody.chunks()` is a plain iterator, used by a store's `put` in a worker
thread, that pulls the request body from the event loop through a blocking portal in
batches of about 1 MiB (one hop per batch, not per network read). Downloads:
`VerifiedBody` passes on what a store's `get` yields; the store checks the SHA-256 and size
before its last chunk, so a client never receives the whole of a body that is wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from anyio.from_thread import BlockingPortal
from starlette.requests import Request

from gateway.errors import IntegrityFailure

BATCH_SIZE = 1024 * 1024


class RequestBody:
    """The request body as a blocking iterator of ~1 MiB chunks, for a worker thread."""

    def __init__(self, request: Request, portal: BlockingPortal) -> None:
        self._stream: AsyncIterator[bytes] = request.stream().__aiter__()
        self._portal = portal
        self._ended = False
        self._first: bytes | None = None
        self.size = 0

    async def prefetch(self) -> None:
        """Read the first batch on the event loop: a small body then needs no portal hop."""
        self._first = await self._next_batch()

    async def _next_batch(self) -> bytes | None:
        if self._ended:
            return None
        parts: list[bytes] = []
        collected = 0
        while collected < BATCH_SIZE:
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                self._ended = True
                break
            if chunk:
                parts.append(chunk)
                collected += len(chunk)
        if not parts:
            return None
        self.size += collected
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def chunks(self) -> Iterator[bytes]:
        first, self._first = self._first, None
        if first is not None:
            yield first
        while not self._ended and (batch := self._portal.call(self._next_batch)) is not None:
            yield batch


class VerifiedBody:
    """Chunks of a stored body, as a store's `get(..., sha256=..., size=...)` yields them.

    The store is the one place a body is hashed on the way out: it raises its
    IntegrityError before the last chunk when the SHA-256 or size differ from the ledger's,
    so every byte is hashed once. This wrapper tells when the last chunk has been handed
    out, so that a body of one chunk is answered without a stream, and it counts bytes as
    they pass: a store that ends early or runs on past the ledger's size is refused with
    IntegrityFailure.
    """

    def __init__(self, chunks: Iterator[bytes], *, size: int) -> None:
        self._chunks = chunks
        self._size = size
        self._seen = 0
        self._held: bytes | None = None
        self._done = False

    @property
    def done(self) -> bool:
        """True once the last chunk has been handed out (or the body ended empty)."""
        return self._done and self._held is None

    def next_chunk(self) -> bytes | None:
        """The next verified chunk, or None at the end (blocking: call in a worker thread)."""
        if self._done:
            return None
        # One chunk is held back until the next one (or the end) arrives, so that `done` is
        # known as soon as the last chunk is handed out: a body of one chunk is then answered
        # without a stream.
        for chunk in self._chunks:
            if not chunk:
                continue
            self._seen += len(chunk)
            if self._seen > self._size:
                raise IntegrityFailure("the stored body is longer than the ledger records")
            previous, self._held = self._held, chunk
            if previous is not None:
                return previous
        self._done = True
        if self._seen != self._size:
            raise IntegrityFailure("the stored body is shorter than the ledger records")
        last, self._held = self._held, None
        return last

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()
