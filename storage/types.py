"""Value types and the narrow protocols every blob store implements.

Each capability is its own small ``typing.Protocol`` (as in obspec), so a caller can ask
for exactly what it uses: the upload path needs ``Put``, garbage collection ``List`` and
``Delete``. ``BlobStore`` is all of them together; every backend and the replicated store
satisfy it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

#: What ``put`` accepts: a binary file object (read in chunks) or an iterable of chunks.
Source = BinaryIO | Iterable[bytes]


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A body that a store (or enough stores of a replicated store) now holds.

    ``locators`` name each store that holds it and the key or CID there; they are what the
    ledger records. They never contain a host path, endpoint or credential.
    """

    sha256: str
    size: int
    locators: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What a store knows about one body it holds, without reading it."""

    sha256: str
    size: int
    locator: str
    modified: datetime  # aware, UTC: when the body was last written (a re-put refreshes it)


@dataclass(frozen=True, slots=True)
class GcReport:
    """The outcome of one garbage-collection pass."""

    examined: int
    kept_referenced: int
    kept_young: int
    deleted: tuple[str, ...]  # locators removed
    failed: tuple[tuple[str, str], ...]  # (locator, reason) that could not be removed
    dry_run: bool = False


class Put(Protocol):
    def put(self, source: Source, *, sha256: str | None = None) -> StoredBlob:
        """Store a body read once from ``source``; its SHA-256 is computed while streaming.

        Content addressed and idempotent: equal bodies give equal results. When the caller
        already knows the SHA-256 it may pass it; the store then still checks it and
        raises IntegrityError, storing nothing, if the body does not match.
        """
        ...


class Get(Protocol):
    def get(
        self, locators: Sequence[str], *, sha256: str, size: int | None = None
    ) -> Iterator[bytes]:
        """Stream a body, checking it against the SHA-256 (and size) from the ledger.

        ``locators`` may include locators of other stores; a store uses the ones it owns
        (and, for stores keyed by SHA-256, the SHA-256 alone). A mismatch raises
        IntegrityError naming the store before the last chunk is handed out.
        """
        ...


class Head(Protocol):
    def head(self, locator: str) -> BlobInfo:
        """Describe the body at ``locator`` without reading it; BlobNotFound if absent."""
        ...


class Delete(Protocol):
    def delete(self, locator: str) -> None:
        """Remove the body at ``locator``; removing an absent body is not an error."""
        ...


class List(Protocol):
    def list(self) -> Iterator[BlobInfo]:
        """Every body the store holds (for garbage collection), in no particular order."""
        ...


class Check(Protocol):
    def check(self) -> None:
        """Verify configuration and reachability now; raise StoreMisconfigured or
        StoreUnavailable with a message that says what to fix."""
        ...


@runtime_checkable
class BlobStore(Put, Get, Head, Delete, List, Check, Protocol):
    """A complete blob store: every capability plus a name, ownership test and close."""

    @property
    def name(self) -> str:
        """The store's configured name: it appears in locators and in error messages."""
        ...

    def owns(self, locator: str) -> bool:
        """Whether ``locator`` names a body in this store."""
        ...

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...
