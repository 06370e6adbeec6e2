"""Stores that keep each body under its SHA-256 (local, S3): locators
``<scheme>://<name>/blobs/ab/<sha256>``, and ``get`` once the body is opened by its key."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar

from storage._backend import Backend
from storage._config import split_locator
from storage._streams import blob_key, check_sha256, sha256_of_key
from storage.errors import IntegrityError, InvalidLocator
from storage.types import StoredBlob

#: An opened body: its chunks, how to release it, and its length if the store tells it.
Opened = tuple[Iterator[bytes], Callable[[], object], int | None]


class KeyedStore(Backend):
    """A store whose key for a body is ``blob_key(sha256)``: ``locator``, ``owns``, ``get``.

    The locator carries the store's configured name, never its address, so a body keeps
    its locator when the store moves. A subclass opens a body by its SHA-256 (``_open``).
    """

    scheme: ClassVar[str]

    def _open(self, sha256: str) -> Opened:
        """Open the body stored under ``blob_key(sha256)``; errors are mapped by the caller."""
        raise NotImplementedError

    def get(
        self, locators: Sequence[str], *, sha256: str, size: int | None = None
    ) -> Iterator[bytes]:
        check_sha256(sha256)
        # Opened now, so that a missing body raises here rather than mid-response.
        with self._errors(f"body {sha256}"):
            chunks, release, length = self._open(sha256)
        if size is not None and length is not None and length != size:
            release()
            raise IntegrityError(
                f"store {self._name!r} holds {length} bytes for {sha256}, expected {size}",
                store=self._name,
            )
        return self._body(chunks, release, sha256=sha256, size=size, where=sha256)

    def locator(self, sha256: str) -> str:
        return f"{self.scheme}://{self._name}/{blob_key(sha256)}"

    def owns(self, locator: str) -> bool:
        try:
            scheme, authority, path = split_locator(locator)
        except InvalidLocator:
            return False
        return scheme == self.scheme and authority == self._name and sha256_of_key(path) is not None

    def _sha256_of(self, locator: str) -> str:
        if not self.owns(locator):
            raise InvalidLocator(
                f"locator {locator!r} does not name a body in store {self._name!r}",
                store=self._name,
            )
        sha = sha256_of_key(split_locator(locator)[2])
        assert sha is not None  # owns() checked it
        return sha

    def _stored(self, sha256: str, size: int) -> StoredBlob:
        """What ``put`` returns once the body is in place under its key."""
        return StoredBlob(sha256=sha256, size=size, locators=(self.locator(sha256),))
