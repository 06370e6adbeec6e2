"""The storage package's exception tree.

StorageError                 root; ``store`` names the store involved (or None), ``failures``
│                            lists (store name, error) for each member of a replicated store
├── BlobNotFound             no body at that locator (also a FileNotFoundError)
├── StoreUnavailable         the store cannot be reached or did not answer in time: retry later
│   └── QuorumNotReached     a replicated write landed on fewer stores than the write quorum
├── IntegrityError           the bytes a store returned do not match the SHA-256 or size
│                            recorded on the ledger
├── StoreMisconfigured       the store URL, bucket, credentials or endpoint are wrong:
│                            the message says what to fix (also a ValueError)
└── InvalidLocator           a locator or SHA-256 is malformed (also a ValueError)

Errors of boto3/botocore and httpx never leave this package: each backend translates them
in exactly one ``_map_errors()`` with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence


class StorageError(Exception):
    """Root of every error raised by the storage package."""

    def __init__(
        self,
        message: str,
        *,
        store: str | None = None,
        failures: Sequence[tuple[str, StorageError]] = (),
    ) -> None:
        super().__init__(message)
        self.store = store
        # For a replicated store: each member store that failed, with its own error.
        self.failures = tuple(failures)


class BlobNotFound(StorageError, FileNotFoundError):
    """The store holds no body at that locator."""

    def __str__(self) -> str:
        # FileNotFoundError formats its args as (errno, strerror); keep our message intact.
        return str(self.args[0]) if self.args else "blob not found"


class StoreUnavailable(StorageError):
    """The store could not be reached, refused the connection or timed out."""


class QuorumNotReached(StoreUnavailable):
    """A replicated write reached fewer stores than the configured write quorum."""


class IntegrityError(StorageError):
    """A store returned bytes whose SHA-256 or size differs from the expected ones."""


class StoreMisconfigured(StorageError, ValueError):
    """A store URL, bucket, credential or endpoint is wrong; the message says what to fix."""


class InvalidLocator(StorageError, ValueError):
    """A locator or SHA-256 given to the store is malformed."""
