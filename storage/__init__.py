"""Blob stores for sealed bodies: local directory, S3, IPFS, and replication across them.

    store = open_store("s3://ehrgate?endpoint_url=http://127.0.0.1:8333")
    blob = store.put(stream)                      # StoredBlob(sha256, size, locators)
    body = store.get(blob.locators, sha256=blob.sha256, size=blob.size)

Backends (``storage.local``, ``storage.s3``, ``storage.ipfs``) are imported only when a
URL of their scheme is opened.
"""

from storage.erasure import EraseReport, erase_blobs
from storage.errors import (
    BlobNotFound,
    IntegrityError,
    InvalidLocator,
    QuorumNotReached,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
)
from storage.gc import collect_garbage
from storage.registry import open_store, schemes
from storage.replicated import ReplicatedStore
from storage.types import (
    BlobInfo,
    BlobStore,
    Check,
    Delete,
    GcReport,
    Get,
    Head,
    List,
    Put,
    Source,
    StoredBlob,
)

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "Check",
    "Delete",
    "EraseReport",
    "GcReport",
    "Get",
    "Head",
    "IntegrityError",
    "InvalidLocator",
    "List",
    "Put",
    "QuorumNotReached",
    "ReplicatedStore",
    "Source",
    "StorageError",
    "StoreMisconfigured",
    "StoreUnavailable",
    "StoredBlob",
    "collect_garbage",
    "erase_blobs",
    "open_store",
    "schemes",
]
