"""The conformance suite run against every backend: local, moto, SeaweedFS, IPFS (the Kubo
contract mock, a real js-ipfs node, and a real Kubo when configured)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from storage import BlobStore, StoredBlob, open_store
from storage._config import split_locator
from storage._streams import blob_key
from storage.ipfs import IpfsStore
from storage.local import LocalStore
from storage.replicated import ReplicatedStore
from tests.jsipfs import JsIpfs
from tests.seaweedfs import SeaweedFS
from tests.storage.conformance import AbstractBlobStoreTests, Corrupt
from tests.storage.kubo_mock import KuboMock

MIB = 1024 * 1024
# Small parts so that the suite's "large" bodies take the multipart path in a few MiB.
S3_SMALL_PARTS = "multipart_threshold=5MiB&part_size=5MiB"


def _flip_a_byte(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def _flip_file(path: Path) -> None:
    path.write_bytes(_flip_a_byte(path.read_bytes()))


# -- local --------------------------------------------------------------------------------


class LocalFixtures:
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[BlobStore]:
        store = open_store(f"file://{tmp_path}/blobs")
        yield store
        store.close()

    @pytest.fixture
    def corrupt(self, tmp_path: Path) -> Corrupt:
        def corrupt(blob: StoredBlob) -> None:
            _flip_file(tmp_path / "blobs" / blob_key(blob.sha256))

        return corrupt


class TestLocalStore(LocalFixtures, AbstractBlobStoreTests):
    pass


# -- replicated (two local directories) ---------------------------------------------------


class ReplicatedLocalFixtures:
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[BlobStore]:
        store = open_store(
            [f"file://{tmp_path}/a?name=site-a", f"file://{tmp_path}/b?name=site-b"],
            write_quorum=2,
        )
        assert isinstance(store, ReplicatedStore)
        yield store
        store.close()

    @pytest.fixture
    def corrupt(self, tmp_path: Path) -> Corrupt:
        def corrupt(blob: StoredBlob) -> None:
            for site in ("a", "b"):
                _flip_file(tmp_path / site / blob_key(blob.sha256))

        return corrupt


class TestReplicatedLocalStores(ReplicatedLocalFixtures, AbstractBlobStoreTests):
    pass


# -- S3: moto -----------------------------------------------------------------------------

MOTO_BUCKET = "ehrgate-moto"


class MotoFixtures:
    large_size = 12 * MIB + 5

    @pytest.fixture
    def store(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlobStore]:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            with closing(boto3.client("s3", region_name="us-east-1")) as client:
                client.create_bucket(Bucket=MOTO_BUCKET)
            store = open_store(f"s3://{MOTO_BUCKET}?region=us-east-1&{S3_SMALL_PARTS}")
            yield store
            store.close()

    @pytest.fixture
    def corrupt(self, store: BlobStore) -> Corrupt:
        def corrupt(blob: StoredBlob) -> None:
            with closing(boto3.client("s3", region_name="us-east-1")) as client:
                key = blob_key(blob.sha256)
                data = client.get_object(Bucket=MOTO_BUCKET, Key=key)["Body"].read()
                client.put_object(Bucket=MOTO_BUCKET, Key=key, Body=_flip_a_byte(data))

        return corrupt


class TestS3OnMoto(MotoFixtures, AbstractBlobStoreTests):
    pass


# -- S3: a real SeaweedFS server -----------------------------------------------------------


class SeaweedFixtures:
    large_size = 12 * MIB + 5

    @pytest.fixture
    def store(self, seaweedfs: SeaweedFS, seaweedfs_bucket: str) -> Iterator[BlobStore]:
        store = open_store(seaweedfs.store_url(seaweedfs_bucket) + "&" + S3_SMALL_PARTS)
        yield store
        store.close()

    @pytest.fixture
    def corrupt(self, seaweedfs: SeaweedFS, seaweedfs_bucket: str) -> Corrupt:
        def corrupt(blob: StoredBlob) -> None:
            with closing(seaweedfs.client()) as client:
                key = blob_key(blob.sha256)
                data = client.get_object(Bucket=seaweedfs_bucket, Key=key)["Body"].read()
                client.put_object(Bucket=seaweedfs_bucket, Key=key, Body=_flip_a_byte(data))

        return corrupt


@pytest.mark.seaweedfs
class TestS3OnSeaweedFS(SeaweedFixtures, AbstractBlobStoreTests):
    pass


# -- IPFS: the Kubo RPC contract (mock) and a real Kubo when configured -------------------


class KuboMockFixtures:
    large_size = 1 * MIB + 5

    @pytest.fixture
    def kubo(self) -> KuboMock:
        return KuboMock()

    @pytest.fixture
    def store(self, kubo: KuboMock) -> Iterator[BlobStore]:
        store = IpfsStore.from_url("ipfs+http://127.0.0.1:5001", transport=kubo.transport())
        store.check()
        yield store
        store.close()

    @pytest.fixture
    def corrupt(self, kubo: KuboMock) -> Corrupt:
        def corrupt(blob: StoredBlob) -> None:
            kubo.corrupt(split_locator(blob.locators[0])[1])

        return corrupt


class TestIpfsOnKuboContract(KuboMockFixtures, AbstractBlobStoreTests):
    pass


class JsIpfsFixtures:
    """The session's real js-ipfs node (tests/jsipfs.py); every ehrgate pin on it is
    removed before each test."""

    large_size = 3 * MIB + 5

    @pytest.fixture
    def store(self, jsipfs: JsIpfs) -> Iterator[BlobStore]:
        store = open_store(jsipfs.store_url(name="jsipfs"))
        for info in list(store.list()):
            store.delete(info.locator)
        yield store
        store.close()

    @pytest.fixture
    def corrupt(self, jsipfs: JsIpfs) -> Corrupt:
        def corrupt(blob: StoredBlob) -> None:
            jsipfs.corrupt(split_locator(blob.locators[0])[1])

        return corrupt


class TestIpfsOnJsIpfs(JsIpfsFixtures, AbstractBlobStoreTests):
    pass


class RealKuboFixtures:
    """A real Kubo node named by EHRGATE_TEST_KUBO_URL (e.g. ipfs+http://127.0.0.1:5001).

    Use a throw-away node: every ehrgate pin on it is removed before each test.
    """

    large_size = 3 * MIB + 5

    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        url = os.environ.get("EHRGATE_TEST_KUBO_URL")
        if not url:
            pytest.skip(
                "no real Kubo node: set EHRGATE_TEST_KUBO_URL=ipfs+http://HOST:5001 to run "
                "the IPFS suite against one"
            )
        store = open_store(url)
        for info in list(store.list()):
            store.delete(info.locator)
        yield store
        store.close()

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        def corrupt(blob: StoredBlob) -> None:
            pytest.skip("a real Kubo node's blocks cannot be changed from outside")

        return corrupt


class TestIpfsOnRealKubo(RealKuboFixtures, AbstractBlobStoreTests):
    pass


def test_local_store_from_relative_url_resolves_against_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file:data")
    assert isinstance(store, LocalStore)
    assert (tmp_path / "data" / "blobs").is_dir()
