"""Replication under failure: a store down, a corrupt copy, a write quorum that cannot be met."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import (
    BlobNotFound,
    IntegrityError,
    QuorumNotReached,
    ReplicatedStore,
    Source,
    StorageError,
    StoredBlob,
    StoreUnavailable,
    collect_garbage,
    open_store,
)
from storage._streams import blob_key
from storage.local import LocalStore
from tests.seaweedfs import SeaweedFS
from tests.storage.conformance import body_of, in_chunks

# Fail fast when a store is down: one attempt, short connect timeout.
FAST = {"max_attempts": "1", "connect_timeout": "1", "read_timeout": "5"}
MIB = 1024 * 1024


class Failures:
    """Collects what the replicated store reports through ``on_failure``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, StorageError]] = []

    def __call__(self, store: str, error: StorageError) -> None:
        self.seen.append((store, error))

    def kinds(self) -> set[tuple[str, type[StorageError]]]:
        return {(store, type(error)) for store, error in self.seen}


def _replicated(urls: list[str], quorum: int, failures: Failures) -> ReplicatedStore:
    members = [open_store(url, check=False) for url in urls]
    return ReplicatedStore(members, write_quorum=quorum, on_failure=failures)


def _read(store: ReplicatedStore, locators: tuple[str, ...], data: bytes) -> bytes:
    sha = hashlib.sha256(data).hexdigest()
    return b"".join(store.get(locators, sha256=sha, size=len(data)))


@pytest.fixture
def own_seaweedfs() -> Iterator[SeaweedFS]:
    """A SeaweedFS server of this test's own, which the test may kill."""
    with SeaweedFS.start() as server:
        yield server


@pytest.mark.seaweedfs
def test_with_quorum_one_writes_and_reads_go_on_when_seaweedfs_stops(
    own_seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    bucket = own_seaweedfs.create_bucket()
    failures = Failures()
    store = _replicated(
        [own_seaweedfs.store_url(bucket, name="s3-site", **FAST), f"file://{tmp_path}?name=disk"],
        quorum=1,
        failures=failures,
    )
    store.check()
    before = body_of(300_000, seed=1)
    first = store.put(io.BytesIO(before))
    assert len(first.locators) == 2

    own_seaweedfs.kill()

    store.check()  # one reachable store still makes the quorum of one
    after = body_of(6 * MIB, seed=2)
    second = store.put(in_chunks(after, MIB))
    assert second.locators == (f"file://disk/{blob_key(second.sha256)}",)
    assert _read(store, first.locators, before) == before
    assert _read(store, second.locators, after) == after
    assert ("s3-site", StoreUnavailable) in failures.kinds()
    store.close()


@pytest.mark.seaweedfs
def test_a_corrupt_copy_in_one_store_is_detected_and_the_other_served(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str, tmp_path: Path
) -> None:
    failures = Failures()
    store = _replicated(
        [seaweedfs.store_url(seaweedfs_bucket, name="s3-site"), f"file://{tmp_path}?name=disk"],
        quorum=2,
        failures=failures,
    )
    data = body_of(2 * MIB, seed=3)
    blob = store.put(io.BytesIO(data))
    with closing(seaweedfs.client()) as client:
        tampered = bytearray(data)
        tampered[1000] ^= 0xFF
        client.put_object(Bucket=seaweedfs_bucket, Key=blob_key(blob.sha256), Body=bytes(tampered))

    assert _read(store, blob.locators, data) == data
    assert failures.kinds() == {("s3-site", IntegrityError)}
    assert "s3-site" in str(failures.seen[0][1])
    store.close()


def test_a_corrupt_first_copy_falls_back_and_reports_the_bad_store(tmp_path: Path) -> None:
    failures = Failures()
    store = _replicated(
        [f"file://{tmp_path}/a?name=site-a", f"file://{tmp_path}/b?name=site-b"], 2, failures
    )
    data = body_of(100_000, seed=4)
    blob = store.put(io.BytesIO(data))
    path = tmp_path / "a" / blob_key(blob.sha256)
    path.write_bytes(path.read_bytes()[:-1] + b"?")
    assert _read(store, blob.locators, data) == data
    assert failures.kinds() == {("site-a", IntegrityError)}


def test_every_copy_corrupt_is_an_integrity_error_naming_the_bad_stores(tmp_path: Path) -> None:
    store = _replicated(
        [f"file://{tmp_path}/a?name=site-a", f"file://{tmp_path}/b?name=site-b"], 2, Failures()
    )
    data = body_of(1000, seed=5)
    blob = store.put(io.BytesIO(data))
    for site in ("a", "b"):
        (tmp_path / site / blob_key(blob.sha256)).write_bytes(b"swapped body")
    with pytest.raises(IntegrityError) as caught:
        _read(store, blob.locators, data)
    assert caught.value.store == "site-a, site-b"
    assert [name for name, _ in caught.value.failures] == ["site-a", "site-b"]


def test_a_missing_copy_falls_back_to_the_next_store(tmp_path: Path) -> None:
    failures = Failures()
    store = _replicated(
        [f"file://{tmp_path}/a?name=site-a", f"file://{tmp_path}/b?name=site-b"], 2, failures
    )
    data = body_of(1000, seed=6)
    blob = store.put(io.BytesIO(data))
    (tmp_path / "a" / blob_key(blob.sha256)).unlink()
    assert _read(store, blob.locators, data) == data
    assert failures.kinds() == {("site-a", BlobNotFound)}


@pytest.mark.seaweedfs
def test_quorum_two_with_a_store_down_fails_and_commits_nothing(
    own_seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    bucket = own_seaweedfs.create_bucket()
    failures = Failures()
    store = _replicated(
        [own_seaweedfs.store_url(bucket, name="s3-site", **FAST), f"file://{tmp_path}?name=disk"],
        quorum=2,
        failures=failures,
    )
    own_seaweedfs.kill()
    data = body_of(9 * MIB, seed=7)
    with pytest.raises(QuorumNotReached, match="fewer than the write quorum of 2") as caught:
        store.put(in_chunks(data, MIB))
    assert isinstance(caught.value, StoreUnavailable)
    assert [name for name, _ in caught.value.failures] == ["s3-site"]
    # No partial upload anywhere; a copy that did land is an orphan for the collector.
    assert list((tmp_path / "incoming").iterdir()) == []
    disk = store.stores[1]
    orphans = [info.sha256 for info in disk.list()]
    assert orphans in ([], [hashlib.sha256(data).hexdigest()])
    report = collect_garbage(
        disk, set(), grace=timedelta(minutes=5), now=datetime.now(UTC) + timedelta(hours=1)
    )
    assert len(report.deleted) == len(orphans)
    assert list(disk.list()) == []
    with pytest.raises(StoreUnavailable):
        store.check()  # one reachable store cannot make a quorum of two


def test_an_unmeetable_quorum_stops_the_write_early(tmp_path: Path) -> None:
    class Broken(LocalStore):
        def put(self, source: Source, *, sha256: str | None = None) -> StoredBlob:
            raise StoreUnavailable("disk gone", store=self.name)

    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for chunk in in_chunks(body_of(50 * MIB, seed=8), MIB):
            consumed += len(chunk)
            yield chunk

    store = ReplicatedStore(
        [Broken(tmp_path / "a", name="a"), LocalStore(tmp_path / "b", name="b")], write_quorum=2
    )
    with pytest.raises(QuorumNotReached):
        store.put(source())
    assert consumed < 50 * MIB
    assert list((tmp_path / "b" / "incoming").iterdir()) == []


def test_when_every_store_is_down_reads_are_unavailable(tmp_path: Path) -> None:
    class Down(LocalStore):
        def get(self, *args: object, **kwargs: object) -> Iterator[bytes]:
            raise StoreUnavailable("connection refused", store=self.name)

    store = ReplicatedStore([Down(tmp_path / "a", name="a"), Down(tmp_path / "b", name="b")])
    with pytest.raises(StoreUnavailable, match="no member of store 'replicated'"):
        b"".join(store.get(("file://a/x",), sha256="0" * 64))


def test_a_large_body_is_checked_before_it_is_served_and_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    failures = Failures()
    store = ReplicatedStore(
        [LocalStore(tmp_path / "a", name="a"), LocalStore(tmp_path / "b", name="b")],
        spool_memory=MIB,
        on_failure=failures,
    )
    data = body_of(5 * MIB, seed=9)
    blob = store.put(in_chunks(data, MIB))
    path = tmp_path / "a" / blob_key(blob.sha256)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    chunks = list(store.get(blob.locators, sha256=blob.sha256, size=blob.size))
    assert b"".join(chunks) == data
    assert max(map(len, chunks)) <= MIB
    assert failures.kinds() == {("a", IntegrityError)}
