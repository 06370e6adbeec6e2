"""Deleting every copy of given blobs from a store and each store it is made of (erasure).

Erasure names blobs by SHA-256, with the locators the ledger knows for each (a record's
body locators; none for a capsule, whose copies the gateway stores content addressed).
Each member store is asked to delete its copy where it keeps one: a keyed store (local,
S3) under the key its SHA-256 gives, an IPFS node under the locators it owns and under the
CID of a single raw block (a capsule is one), which the node unpins and removes. A store
that cannot be reached is named in the report and the rest go on: the caller decides what
to retry (`ehrgate gc` deletes what an erasure left behind).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from storage._cid import raw_cid_of_sha256
from storage._keyed import KeyedStore
from storage.errors import BlobNotFound, StorageError
from storage.types import BlobStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class EraseReport:
    """What `erase_blobs` did: locators deleted (or already absent), and those it could not
    delete with the reason."""

    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed


def members(store: BlobStore) -> list[BlobStore]:
    """The stores *store* is made of (itself if it is a single store), flattened."""
    inner: Sequence[BlobStore] | None = getattr(store, "stores", None)
    if inner is None:
        return [store]
    return [leaf for member in inner for leaf in members(member)]


def _locators(member: BlobStore, sha256: str, known: Iterable[str]) -> list[str]:
    """Where *member* may keep a copy of the blob *sha256*."""
    found = [locator for locator in known if member.owns(locator)]
    if isinstance(member, KeyedStore):
        derived = member.locator(sha256)
    else:
        derived = f"ipfs://{raw_cid_of_sha256(sha256)}"
    if member.owns(derived) and derived not in found:
        found.append(derived)
    return found


def erase_blobs(store: BlobStore, blobs: Mapping[str, Iterable[str]]) -> EraseReport:
    """Delete from every member of *store* each blob of *blobs* (SHA-256 -> the locators
    known for it). Never raises a StorageError: failures are in the report."""
    report = EraseReport()
    known = {sha256: list(locators) for sha256, locators in blobs.items()}
    for member in members(store):
        for sha256, locators in known.items():
            for locator in _locators(member, sha256, locators):
                try:
                    member.delete(locator)
                except BlobNotFound:
                    pass  # nothing there: as good as deleted
                except StorageError as exc:
                    log.warning("could not delete %s for an erasure: %s", locator, exc)
                    report.failed.append((locator, str(exc)))
                    continue
                report.deleted.append(locator)
    return report


__all__ = ["EraseReport", "erase_blobs", "members"]
