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
in exactly one place (``_map_errors()`` of local and s3, ``map_errors()`` of the Kubo RPC
client) with ``raise ... from exc``. How the failures of several member stores add up to
one error is decided here too (``read_failure``, ``write_failure``).
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


#: (store name, its error) for each member store that failed, as in ``StorageError.failures``.
Failures = Sequence[tuple[str, StorageError]]


def write_failure(message: str, failures: Failures, *, store: str) -> StorageError:
    """The error of a replicated write that reached too few members: IntegrityError when
    every member that failed found a body other than the one announced (the upload is at
    fault, not the stores), else QuorumNotReached with ``message``."""
    if failures and all(isinstance(error, IntegrityError) for _, error in failures):
        return IntegrityError(str(failures[0][1]), store=failures[0][0], failures=failures)
    return QuorumNotReached(message, store=store, failures=failures)


def read_failure(message: str, failures: Failures, *, store: str) -> StorageError:
    """The error of a replicated read that no member could serve, of the kind a caller acts
    on first: StoreUnavailable if any member was (a retry may succeed), else IntegrityError
    naming the members whose copy was bad, else StoreMisconfigured, else BlobNotFound."""
    bad = [name for name, error in failures if isinstance(error, IntegrityError)]
    if any(isinstance(error, StoreUnavailable) for _, error in failures):
        return StoreUnavailable(message, store=store, failures=failures)
    if bad:
        return IntegrityError(message, store=", ".join(bad), failures=failures)
    if any(isinstance(error, StoreMisconfigured) for _, error in failures):
        return StoreMisconfigured(message, store=store, failures=failures)
    return BlobNotFound(message, store=store, failures=failures)
