"""What the single-store backends (local, S3, IPFS) share: a configured name, one place that
translates the backend's errors, and bodies read back through it with their SHA-256 checked."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from storage._streams import (
    BodyStream,
    Digest,
    check_put_digest,
    check_sha256,
    iter_source,
    verified,
)
from storage.types import Source

T = TypeVar("T")


class Backend:
    """Base of LocalStore, S3Store and IpfsStore; ``_errors`` is each backend's error map."""

    _name: str

    @property
    def name(self) -> str:
        return self._name

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Translate the backend's own errors raised inside into the storage tree."""
        raise NotImplementedError

    def _hashing(self, source: Source, sha256: str | None) -> tuple[Digest, Iterator[bytes]]:
        """The start of every ``put``: the announced SHA-256 checked for form, and the
        chunks of ``source`` counted and hashed into the returned Digest as they are read."""
        if sha256 is not None:
            check_sha256(sha256)
        digest = Digest()
        return digest, map(digest.update, iter_source(source))

    def _hashed(self, digest: Digest, sha256: str | None) -> str:
        """The end of every ``put``: the SHA-256 of what was read, which must be the
        announced one if there was one (IntegrityError otherwise)."""
        return check_put_digest(digest, sha256, self._name)

    def _guarded(self, items: Iterator[T], what: str) -> Iterator[T]:
        """Yield from ``items``, fetching each one inside ``_errors(what)``: a connection or
        file that fails half-way raises a storage error from the consumer's loop."""
        while True:
            with self._errors(what):
                item = next(items, None)
            if item is None:
                return
            yield item

    def _body(
        self,
        chunks: Iterator[bytes],
        release: Callable[[], object],
        *,
        sha256: str,
        size: int | None,
        where: str,
    ) -> BodyStream:
        """The iterator ``get`` returns: ``chunks`` checked against ``sha256`` and ``size``,
        then ``release`` called when the reader is done or gives up."""
        checked = verified(
            self._guarded(chunks, f"body {where}"),
            sha256=sha256,
            size=size,
            store=self._name,
            where=where,
        )
        return BodyStream(checked, release)
