"""A SHA-256 that can run on a helper thread, so hashing overlaps encryption on another core.

Sealing hashes twice (the plaintext, for the signed metadata, and the sealed body, for
content addressing) and encrypts once. hashlib releases the GIL while it hashes more than
2 KiB, so handing one of those hashes to a second thread lets a two-core machine seal at
close to the speed of a single SHA-256 pass. Small inputs are hashed inline: a thread only
starts once a large piece arrives, and at most a few pieces wait for it, which keeps the
memory bound at a few segments.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

OFFLOAD_THRESHOLD = 256 * 1024  # smaller pieces cost more to hand over than to hash
MAX_PENDING = 4


def _hash_pieces(digest: Any, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
    for piece in pieces:
        digest.update(piece)


class Digest:
    """SHA-256 of everything passed to `update`, in order; `hexdigest` waits for the helper."""

    __slots__ = ("_hash", "_pending", "_pool", "_threaded")

    def __init__(self, *, threaded: bool = True) -> None:
        self._hash = hashlib.sha256()
        self._threaded = threaded
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add *data*, which must not change afterwards (bytes, or a view of bytes)."""
        self.update_many((data,), len(data))

    def update_many(self, pieces: Sequence[bytes | bytearray | memoryview], size: int) -> None:
        """Add each of *pieces* in order; *size* is their total length."""
        if self._pool is None:
            if not (self._threaded and size >= OFFLOAD_THRESHOLD):
                for piece in pieces:
                    self._hash.update(piece)
                return
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ehrgate-sha256")
        # one worker runs the tasks in the order they were given
        self._pending.append(self._pool.submit(_hash_pieces, self._hash, pieces))
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft().result()

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def hexdigest(self) -> str:
        self._drain()
        return self._hash.hexdigest()

    def close(self) -> None:
        """Stop the helper thread without waiting for a digest (after a failure)."""
        self._drain()
