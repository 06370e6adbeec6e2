"""The blob-store conformance suite, written once and run against every backend.

A backend opts in with a fixtures mixin that provides two fixtures:

- ``store``: an empty, checked ``BlobStore``;
- ``corrupt``: a function that changes the stored bytes of a ``StoredBlob`` behind the
  store's back (or skips the test where that cannot be done, e.g. a real Kubo node).

    class TestS3(AbstractBlobStoreTests, MotoFixtures): ...
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from storage import (
    BlobNotFound,
    BlobStore,
    IntegrityError,
    InvalidLocator,
    StoredBlob,
    collect_garbage,
)

Corrupt = Callable[[StoredBlob], None]


def body_of(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible-looking test data."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 32
        counter += 1
    return bytes(out[:size])


def in_chunks(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read_all(store: BlobStore, blob: StoredBlob) -> bytes:
    return b"".join(store.get(blob.locators, sha256=blob.sha256, size=blob.size))


def delete_everywhere(store: BlobStore, blob: StoredBlob) -> None:
    for locator in blob.locators:
        store.delete(locator)


class _Exploding:
    """A source that fails after ``after`` bytes, as a dropped client connection would."""

    def __init__(self, data: bytes, after: int) -> None:
        self._data = data
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in in_chunks(self._data, 1024 * 1024):
            if sent + len(chunk) > self._after:
                raise ConnectionResetError("the uploader went away")
            sent += len(chunk)
            yield chunk


class AbstractBlobStoreTests:
    """Behaviour every ``BlobStore`` must show."""

    #: A body large enough to need several parts/chunks in this backend.
    large_size: ClassVar[int] = 3 * 1024 * 1024 + 17

    def test_is_a_blob_store(self, store: BlobStore) -> None:
        assert isinstance(store, BlobStore)

    def test_check_passes_on_a_working_store(self, store: BlobStore) -> None:
        store.check()

    def test_put_returns_sha256_size_and_a_locator_of_this_store(self, store: BlobStore) -> None:
        data = body_of(5000)
        blob = store.put(in_chunks(data, 1000))
        assert blob.sha256 == hashlib.sha256(data).hexdigest()
        assert blob.size == 5000
        assert blob.locators
        assert all(store.owns(locator) for locator in blob.locators)

    def test_put_reads_a_binary_file_object(self, store: BlobStore) -> None:
        data = body_of(70_000, seed=1)
        blob = store.put(io.BytesIO(data))
        assert read_all(store, blob) == data

    def test_empty_body_round_trips(self, store: BlobStore) -> None:
        blob = store.put(iter([]))
        assert blob.size == 0
        assert blob.sha256 == hashlib.sha256(b"").hexdigest()
        assert read_all(store, blob) == b""

    def test_put_is_idempotent_for_equal_content(self, store: BlobStore) -> None:
        data = body_of(4096, seed=2)
        first = store.put(io.BytesIO(data))
        second = store.put(in_chunks(data, 100))
        assert first == second
        listed = [info.locator for info in store.list()]
        assert sorted(listed) == sorted(first.locators)

    def test_put_rejects_bytes_instead_of_a_stream(self, store: BlobStore) -> None:
        with pytest.raises(TypeError, match="stream"):
            store.put(b"raw bytes")  # type: ignore[arg-type]

    def test_put_accepts_a_matching_announced_sha256(self, store: BlobStore) -> None:
        data = body_of(10_000, seed=3)
        blob = store.put(io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest())
        assert read_all(store, blob) == data

    def test_put_with_a_wrong_announced_sha256_stores_nothing(self, store: BlobStore) -> None:
        data = body_of(10_000, seed=4)
        with pytest.raises(IntegrityError, match="announced"):
            store.put(io.BytesIO(data), sha256="0" * 64)
        assert list(store.list()) == []

    def test_a_wrong_announced_sha256_leaves_an_equal_stored_body_alone(
        self, store: BlobStore
    ) -> None:
        data = body_of(10_000, seed=22)
        stored = store.put(io.BytesIO(data))
        with pytest.raises(IntegrityError, match="announced"):
            store.put(io.BytesIO(data), sha256="0" * 64)
        assert {info.sha256 for info in store.list()} == {stored.sha256}
        assert read_all(store, stored) == data

    def test_large_body_round_trips_in_bounded_chunks(self, store: BlobStore) -> None:
        data = body_of(self.large_size, seed=5)
        blob = store.put(in_chunks(data, 300_000))
        assert blob.size == len(data)
        chunks = list(store.get(blob.locators, sha256=blob.sha256, size=blob.size))
        assert b"".join(chunks) == data
        assert max(len(chunk) for chunk in chunks) <= 4 * 1024 * 1024

    def test_large_body_with_announced_sha256_round_trips(self, store: BlobStore) -> None:
        data = body_of(self.large_size, seed=6)
        blob = store.put(in_chunks(data), sha256=hashlib.sha256(data).hexdigest())
        assert read_all(store, blob) == data

    def test_large_body_with_wrong_announced_sha256_stores_nothing(self, store: BlobStore) -> None:
        data = body_of(self.large_size, seed=7)
        with pytest.raises(IntegrityError):
            store.put(in_chunks(data), sha256=hashlib.sha256(b"other").hexdigest())
        assert list(store.list()) == []

    def test_a_source_failing_half_way_leaves_nothing(self, store: BlobStore) -> None:
        data = body_of(self.large_size, seed=8)
        with pytest.raises(ConnectionResetError):
            store.put(_Exploding(data, after=len(data) // 2))
        assert list(store.list()) == []

    def test_get_of_a_missing_body_raises_blob_not_found(self, store: BlobStore) -> None:
        data = body_of(100, seed=9)
        blob = store.put(io.BytesIO(data))
        delete_everywhere(store, blob)
        with pytest.raises(BlobNotFound) as caught:
            read_all(store, blob)
        assert isinstance(caught.value, FileNotFoundError)

    def test_get_checked_against_another_sha256_never_returns_the_body(
        self, store: BlobStore
    ) -> None:
        blob = store.put(io.BytesIO(body_of(2000, seed=10)))
        other = hashlib.sha256(b"something else").hexdigest()
        # A locator that points at this body but is checked against another digest: what a
        # swapped body looks like to the reader.
        with pytest.raises((IntegrityError, BlobNotFound)):
            b"".join(store.get(blob.locators, sha256=other, size=blob.size))

    def test_get_with_the_wrong_size_raises_integrity_error(self, store: BlobStore) -> None:
        blob = store.put(io.BytesIO(body_of(2000, seed=11)))
        with pytest.raises(IntegrityError, match=store.name):
            b"".join(store.get(blob.locators, sha256=blob.sha256, size=blob.size + 1))
        with pytest.raises(IntegrityError, match=store.name):
            b"".join(store.get(blob.locators, sha256=blob.sha256, size=blob.size - 1))

    def test_a_corrupted_copy_is_detected_before_the_last_chunk(
        self, store: BlobStore, corrupt: Corrupt
    ) -> None:
        data = body_of(self.large_size, seed=12)
        blob = store.put(io.BytesIO(data))
        corrupt(blob)
        received: list[bytes] = []
        with pytest.raises(IntegrityError, match=store.name):
            received.extend(store.get(blob.locators, sha256=blob.sha256, size=blob.size))
        assert sum(map(len, received)) < len(data)

    def test_get_ignores_locators_of_other_stores(self, store: BlobStore) -> None:
        data = body_of(3000, seed=13)
        blob = store.put(io.BytesIO(data))
        foreign = ("s3://elsewhere-x/blobs/00/" + "0" * 64, "file://other-y/blobs/00/" + "0" * 64)
        chunks = store.get((*foreign, *blob.locators), sha256=blob.sha256, size=blob.size)
        assert b"".join(chunks) == data

    def test_get_rejects_a_malformed_sha256(self, store: BlobStore) -> None:
        with pytest.raises(InvalidLocator):
            store.get(("file://local/x",), sha256="ABC")

    def test_a_stream_closed_early_releases_its_resources(self, store: BlobStore) -> None:
        data = body_of(self.large_size, seed=14)
        blob = store.put(io.BytesIO(data))
        stream = store.get(blob.locators, sha256=blob.sha256, size=blob.size)
        next(stream)
        stream.close()  # type: ignore[attr-defined]
        del stream

    def test_head_describes_a_body_without_reading_it(self, store: BlobStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        blob = store.put(io.BytesIO(body_of(1234, seed=15)))
        info = store.head(blob.locators[0])
        assert (info.sha256, info.size, info.locator) == (blob.sha256, 1234, blob.locators[0])
        assert before <= info.modified <= datetime.now(UTC) + timedelta(seconds=5)

    def test_head_of_a_missing_body_raises_blob_not_found(self, store: BlobStore) -> None:
        blob = store.put(io.BytesIO(body_of(10, seed=16)))
        delete_everywhere(store, blob)
        with pytest.raises(BlobNotFound):
            store.head(blob.locators[0])

    def test_head_rejects_a_locator_of_another_store(self, store: BlobStore) -> None:
        with pytest.raises(InvalidLocator):
            store.head("nowhere://x/blobs/00/" + "0" * 64)

    def test_delete_removes_a_body_and_is_idempotent(self, store: BlobStore) -> None:
        keep = store.put(io.BytesIO(body_of(10, seed=17)))
        gone = store.put(io.BytesIO(body_of(10, seed=18)))
        delete_everywhere(store, gone)
        delete_everywhere(store, gone)
        assert {info.sha256 for info in store.list()} == {keep.sha256}

    def test_list_yields_every_body_once(self, store: BlobStore) -> None:
        blobs = [store.put(io.BytesIO(body_of(100 + n, seed=n))) for n in range(5)]
        listed = sorted((info.locator, info.sha256, info.size) for info in store.list())
        expected = [(loc, blob.sha256, blob.size) for blob in blobs for loc in blob.locators]
        assert listed == sorted(expected)

    def test_locators_carry_no_host_path_endpoint_or_secret(self, store: BlobStore) -> None:
        blob = store.put(io.BytesIO(body_of(10, seed=19)))
        for locator in blob.locators:
            assert "127.0.0.1" not in locator
            assert "secret" not in locator
            assert os.sep + "tmp" not in locator
            assert "pytest" not in locator
            assert "?" not in locator

    def test_garbage_collection_removes_only_old_unreferenced_bodies(
        self, store: BlobStore
    ) -> None:
        kept = store.put(io.BytesIO(body_of(10, seed=20)))
        orphan = store.put(io.BytesIO(body_of(10, seed=21)))
        grace = timedelta(hours=1)
        young = collect_garbage(store, {kept.sha256}, grace=grace)
        assert young.deleted == ()
        assert young.kept_young >= 1
        later = datetime.now(UTC) + timedelta(hours=2)
        dry = collect_garbage(store, {kept.sha256}, grace=grace, now=later, dry_run=True)
        assert set(dry.deleted) == set(orphan.locators)
        assert {info.sha256 for info in store.list()} == {kept.sha256, orphan.sha256}
        report = collect_garbage(store, {kept.sha256}, grace=grace, now=later)
        assert set(report.deleted) == set(orphan.locators)
        assert report.kept_referenced >= 1
        assert {info.sha256 for info in store.list()} == {kept.sha256}
        assert read_all(store, kept) == body_of(10, seed=20)
