"""Store faults on the network, injected between ehrgate and a real store.

A store that refuses connections, one that accepts and never answers, one whose answers are
corrupted on the wire, and a multipart upload cut half-way (a proxy resetting the
connection, or SeaweedFS killed); each alone and behind a replicated store. Expected: a
clear StoreUnavailable (QuorumNotReached when too few members took a write) or
IntegrityError, no partial object anywhere, reads served by a healthy replica, and orphans
that garbage collection removes.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from storage import (
    BlobStore,
    IntegrityError,
    QuorumNotReached,
    ReplicatedStore,
    StorageError,
    StoreUnavailable,
    collect_garbage,
    open_store,
)
from storage._streams import blob_key
from tests.faults.proxy import Corrupt, CutUpload, FaultProxy, SilentServer, closed_port
from tests.faults.settings import rng_for
from tests.seaweedfs import SeaweedFS
from tests.storage.conformance import in_chunks

pytestmark = pytest.mark.faults

MIB = 1024 * 1024
# One attempt and short timeouts: a store that is down or silent must fail fast.
FAST = "max_attempts=1&connect_timeout=1&read_timeout=1"
# The real SeaweedFS behind the fault proxy now and then takes about a second to answer
# (a volume being added, say): its faults are resets and changed bytes, never silence, so
# it gets one attempt and a read timeout that such a pause cannot reach. Otherwise a part
# given up on by the client could still be written after the upload was aborted.
PROXIED = "max_attempts=1&connect_timeout=1&read_timeout=10"
MULTIPART = "multipart_threshold=5MiB&part_size=5MiB"


class Failures:
    """What a replicated store reports through `on_failure`."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, StorageError]] = []

    def __call__(self, store: str, error: StorageError) -> None:
        self.seen.append((store, error))

    def kinds(self) -> set[tuple[str, type[StorageError]]]:
        return {(store, type(error)) for store, error in self.seen}


def body_with_marker(rng: random.Random, size: int) -> tuple[bytes, bytes]:
    """Random bytes with a 32-byte marker in the middle (what `Corrupt` looks for)."""
    marker = rng.randbytes(32)
    half = (size - len(marker)) // 2
    body = rng.randbytes(half) + marker + rng.randbytes(size - len(marker) - half)
    return body, marker


def s3_url(server: SeaweedFS, bucket: str, endpoint: str, name: str, extra: str = "") -> str:
    url = (
        f"s3://{bucket}?endpoint_url={endpoint}&region={server.region}&name={name}"
        f"&access_key_id={server.access_key}&secret_access_key={server.secret_key}&{PROXIED}"
    )
    return f"{url}&{extra}" if extra else url


def unreachable_s3(endpoint: str, name: str = "s3-site") -> BlobStore:
    return open_store(
        f"s3://bucket?endpoint_url={endpoint}&region=us-east-1&name={name}"
        f"&access_key_id=k&secret_access_key=s&{FAST}",
        check=False,
    )


def read(store: BlobStore, locators: tuple[str, ...], data: bytes) -> bytes:
    sha = hashlib.sha256(data).hexdigest()
    return b"".join(store.get(locators, sha256=sha, size=len(data)))


def leftovers(server: SeaweedFS, bucket: str) -> tuple[list[str], list[str]]:
    """(object keys, keys of incomplete multipart uploads) in *bucket*."""
    with closing(server.client()) as client:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        uploads = [
            u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        ]
    return keys, uploads


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return rng_for(request.node.name)


@pytest.fixture
def proxy(seaweedfs: SeaweedFS) -> Iterator[FaultProxy]:
    host, port = seaweedfs.endpoint_url.removeprefix("http://").split(":")
    with FaultProxy((host, int(port))) as running:
        yield running


# --- a store that refuses connections -------------------------------------------------------


def test_a_store_that_refuses_connections_is_unavailable(rng: random.Random) -> None:
    store = unreachable_s3(f"http://127.0.0.1:{closed_port()}")
    data = rng.randbytes(10_000)
    with pytest.raises(StoreUnavailable, match="s3-site") as caught:
        store.put(io.BytesIO(data))
    assert caught.value.store == "s3-site"
    with pytest.raises(StoreUnavailable, match="s3-site"):
        read(store, ("s3://s3-site/" + blob_key(hashlib.sha256(data).hexdigest()),), data)
    store.close()


def test_with_replication_a_refusing_store_is_skipped_and_a_replica_serves(
    tmp_path: Path, rng: random.Random
) -> None:
    failures = Failures()
    down = unreachable_s3(f"http://127.0.0.1:{closed_port()}")
    disk = open_store(f"file://{tmp_path}?name=disk")
    store = ReplicatedStore([down, disk], write_quorum=1, on_failure=failures)
    data = rng.randbytes(200_000)
    blob = store.put(io.BytesIO(data))
    assert blob.locators == (f"file://disk/{blob_key(blob.sha256)}",)
    assert read(store, blob.locators, data) == data
    assert failures.kinds() == {("s3-site", StoreUnavailable)}
    store.close()


def test_a_quorum_that_counts_a_refusing_store_fails_and_keeps_no_partial_upload(
    tmp_path: Path, rng: random.Random
) -> None:
    down = unreachable_s3(f"http://127.0.0.1:{closed_port()}")
    disk = open_store(f"file://{tmp_path}?name=disk")
    store = ReplicatedStore([down, disk], write_quorum=2)
    with pytest.raises(QuorumNotReached, match="write quorum of 2") as caught:
        store.put(in_chunks(rng.randbytes(3 * MIB), MIB))
    assert [name for name, _ in caught.value.failures] == ["s3-site"]
    assert list((tmp_path / "incoming").iterdir()) == []
    # A copy that landed on the healthy member is an orphan: collected with grace 0.
    report = collect_garbage(disk, set(), grace=timedelta(0))
    assert report.failed == ()
    assert list(disk.list()) == []
    store.close()


# --- a store that accepts and never answers --------------------------------------------------


@pytest.mark.timeout(120)
def test_a_store_that_never_answers_times_out_as_unavailable(rng: random.Random) -> None:
    with SilentServer() as silent:
        store = unreachable_s3(silent.url)
        data = rng.randbytes(10_000)
        with pytest.raises(StoreUnavailable, match="s3-site"):
            store.put(io.BytesIO(data))
        with pytest.raises(StoreUnavailable, match="s3-site"):
            read(store, (f"s3://s3-site/{blob_key(hashlib.sha256(data).hexdigest())}",), data)
        store.close()


@pytest.mark.timeout(120)
def test_with_replication_a_silent_store_times_out_and_a_replica_serves(
    tmp_path: Path, rng: random.Random
) -> None:
    failures = Failures()
    with SilentServer() as silent:
        store = ReplicatedStore(
            [unreachable_s3(silent.url), open_store(f"file://{tmp_path}?name=disk")],
            write_quorum=1,
            on_failure=failures,
        )
        data = rng.randbytes(100_000)
        blob = store.put(io.BytesIO(data))
        assert [loc.split("/")[2] for loc in blob.locators] == ["disk"]
        assert read(store, blob.locators, data) == data
        assert failures.kinds() == {("s3-site", StoreUnavailable)}
        store.close()


# --- a store whose answers are corrupted on the wire -----------------------------------------


@pytest.mark.seaweedfs
def test_a_body_corrupted_on_the_wire_is_an_integrity_error_before_its_end(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str, proxy: FaultProxy, rng: random.Random
) -> None:
    store = open_store(s3_url(seaweedfs, seaweedfs_bucket, proxy.url, "s3-site"))
    data, marker = body_with_marker(rng, 3 * MIB)
    blob = store.put(io.BytesIO(data))
    assert read(store, blob.locators, data) == data
    proxy.fault = fault = Corrupt(marker)
    received = bytearray()

    def read_into_received() -> None:
        for chunk in store.get(blob.locators, sha256=blob.sha256, size=blob.size):
            received.extend(chunk)

    with pytest.raises(IntegrityError, match="s3-site"):
        read_into_received()
    assert fault.hits >= 1, "the fault was never injected"
    assert len(received) < len(data), "the whole corrupted body was handed out"
    store.close()


@pytest.mark.seaweedfs
def test_with_replication_a_corrupting_store_is_caught_and_a_replica_serves(
    seaweedfs: SeaweedFS,
    seaweedfs_bucket: str,
    proxy: FaultProxy,
    tmp_path: Path,
    rng: random.Random,
) -> None:
    failures = Failures()
    store = ReplicatedStore(
        [
            open_store(s3_url(seaweedfs, seaweedfs_bucket, proxy.url, "s3-site")),
            open_store(f"file://{tmp_path}?name=disk"),
        ],
        on_failure=failures,
    )
    data, marker = body_with_marker(rng, 2 * MIB)
    blob = store.put(io.BytesIO(data))
    assert len(blob.locators) == 2
    proxy.fault = fault = Corrupt(marker)
    assert read(store, blob.locators, data) == data
    assert fault.hits >= 1
    assert failures.kinds() == {("s3-site", IntegrityError)}
    store.close()


# --- an upload cut half-way through a multipart upload ---------------------------------------


@pytest.mark.seaweedfs
@pytest.mark.parametrize("announced", [False, True], ids=["digest-unknown", "digest-announced"])
def test_a_multipart_upload_cut_half_way_leaves_no_object_and_no_open_upload(
    seaweedfs: SeaweedFS,
    seaweedfs_bucket: str,
    proxy: FaultProxy,
    rng: random.Random,
    announced: bool,
) -> None:
    store = open_store(s3_url(seaweedfs, seaweedfs_bucket, proxy.url, "s3-site", MULTIPART))
    data = rng.randbytes(12 * MIB)
    sha = hashlib.sha256(data).hexdigest() if announced else None
    proxy.fault = fault = CutUpload(after_bytes=7 * MIB)
    with pytest.raises(StoreUnavailable, match="s3-site"):
        store.put(in_chunks(data, MIB), sha256=sha)
    assert fault.done, "the connection was never cut"
    assert leftovers(seaweedfs, seaweedfs_bucket) == ([], [])
    # The store works again once the link heals: the same body goes in whole.
    proxy.fault = None
    blob = store.put(in_chunks(data, MIB), sha256=sha)
    assert read(store, blob.locators, data) == data
    store.close()


@pytest.mark.seaweedfs
def test_with_replication_a_cut_upload_misses_the_quorum_and_leaves_only_an_orphan(
    seaweedfs: SeaweedFS,
    seaweedfs_bucket: str,
    proxy: FaultProxy,
    tmp_path: Path,
    rng: random.Random,
) -> None:

    s3 = open_store(s3_url(seaweedfs, seaweedfs_bucket, proxy.url, "s3-site", MULTIPART))
    disk = open_store(f"file://{tmp_path}?name=disk")
    store = ReplicatedStore([s3, disk], write_quorum=2)
    data = rng.randbytes(12 * MIB)
    proxy.fault = CutUpload(after_bytes=6 * MIB)
    with pytest.raises(QuorumNotReached) as caught:
        store.put(in_chunks(data, MIB))
    assert [name for name, _ in caught.value.failures] == ["s3-site"]
    assert leftovers(seaweedfs, seaweedfs_bucket) == ([], [])
    assert list((tmp_path / "incoming").iterdir()) == []
    report = collect_garbage(store, set(), grace=timedelta(0))
    assert report.failed == ()
    assert list(store.list()) == []
    store.close()


@pytest.mark.seaweedfs
def test_with_quorum_one_a_cut_upload_lands_on_the_replica_which_serves_it(
    seaweedfs: SeaweedFS,
    seaweedfs_bucket: str,
    proxy: FaultProxy,
    tmp_path: Path,
    rng: random.Random,
) -> None:
    failures = Failures()
    s3 = open_store(s3_url(seaweedfs, seaweedfs_bucket, proxy.url, "s3-site", MULTIPART))
    store = ReplicatedStore(
        [s3, open_store(f"file://{tmp_path}?name=disk")], write_quorum=1, on_failure=failures
    )
    data = rng.randbytes(12 * MIB)
    proxy.fault = CutUpload(after_bytes=8 * MIB)
    blob = store.put(in_chunks(data, MIB))
    assert blob.locators == (f"file://disk/{blob_key(blob.sha256)}",)
    assert leftovers(seaweedfs, seaweedfs_bucket) == ([], [])
    assert read(store, blob.locators, data) == data
    assert ("s3-site", StoreUnavailable) in failures.kinds()
    store.close()


@pytest.mark.seaweedfs
def test_seaweedfs_killed_mid_upload_is_unavailable_and_the_replica_keeps_the_body(
    tmp_path: Path, rng: random.Random
) -> None:
    failures = Failures()
    data = rng.randbytes(12 * MIB)
    with SeaweedFS.start() as server:
        bucket = server.create_bucket()
        s3 = open_store(s3_url(server, bucket, server.endpoint_url, "s3-site", MULTIPART))
        store = ReplicatedStore(
            [s3, open_store(f"file://{tmp_path}?name=disk")], write_quorum=1, on_failure=failures
        )

        def source() -> Iterator[bytes]:
            for n, chunk in enumerate(in_chunks(data, MIB)):
                if n == 7:
                    server.kill()  # the first part is up, the second on its way
                yield chunk

        blob = store.put(source())
        assert not server.running
    assert blob.locators == (f"file://disk/{blob_key(blob.sha256)}",)
    assert read(store, blob.locators, data) == data
    assert ("s3-site", StoreUnavailable) in failures.kinds()
    store.close()
