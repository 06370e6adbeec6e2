"""Locators for stores that keep each body under its SHA-256: ``<scheme>://<name>/blobs/ab/<sha256>``."""

from __future__ import annotations

from typing import ClassVar

from storage._config import split_locator
from storage._streams import blob_key, sha256_of_key
from storage.errors import InvalidLocator


class KeyedLocators:
    """``locator``, ``owns`` and ``_sha256_of`` for a store whose key is ``blob_key(sha256)``.

    The locator carries the store's configured name, never its address, so a body keeps
    its locator when the store moves.
    """

    scheme: ClassVar[str]
    _name: str

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
