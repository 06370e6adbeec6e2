"""S3 specifics: multipart parts, aborts on failure, temporary keys, sweeping partial uploads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from storage import IntegrityError, open_store
from storage._streams import blob_key
from storage.s3 import S3Store
from tests.seaweedfs import SeaweedFS
from tests.storage.conformance import body_of, in_chunks

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "ehrgate-s3"
MIB = 1024 * 1024


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(), closing(boto3.client("s3", region_name="us-east-1")) as s3:
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@pytest.fixture
def store(client: S3Client) -> Iterator[S3Store]:
    store = open_store(f"s3://{BUCKET}?region=us-east-1&multipart_threshold=8MiB")
    assert isinstance(store, S3Store)
    yield store
    store.close()


def _keys(client: S3Client) -> list[str]:
    return [entry["Key"] for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def _uploads(client: S3Client) -> list[Any]:
    return client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def test_a_body_below_the_threshold_is_one_put(store: S3Store, client: S3Client) -> None:
    data = body_of(MIB)
    blob = store.put(in_chunks(data))
    head = client.head_object(Bucket=BUCKET, Key=blob_key(blob.sha256))
    assert "-" not in head["ETag"]  # a multipart ETag is "<md5>-<parts>"


def test_a_large_body_is_uploaded_in_parts_of_at_least_8_mib(
    store: S3Store, client: S3Client
) -> None:
    data = body_of(20 * MIB + 3)
    blob = store.put(in_chunks(data, 700_000), sha256=hashlib.sha256(data).hexdigest())
    head = client.head_object(Bucket=BUCKET, Key=blob_key(blob.sha256), PartNumber=1)
    assert head["ContentLength"] == 8 * MIB
    assert head["PartsCount"] == 3
    assert _keys(client) == [blob_key(blob.sha256)]


def test_a_large_body_without_announced_sha256_leaves_no_temporary_key(
    store: S3Store, client: S3Client
) -> None:
    data = body_of(17 * MIB)
    blob = store.put(in_chunks(data))
    assert _keys(client) == [blob_key(blob.sha256)]
    assert _uploads(client) == []


def test_a_failing_source_aborts_the_multipart_upload(store: S3Store, client: S3Client) -> None:
    def source() -> Iterator[bytes]:
        yield from in_chunks(body_of(20 * MIB), MIB)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put(source())
    assert _uploads(client) == []
    assert _keys(client) == []


def test_a_wrong_announced_sha256_aborts_before_completion(
    store: S3Store, client: S3Client
) -> None:
    data = body_of(9 * MIB)
    with pytest.raises(IntegrityError):
        store.put(in_chunks(data), sha256="ab" * 32)
    assert _uploads(client) == []
    assert _keys(client) == []


def test_sweep_partials_aborts_stale_uploads_and_temporary_objects(
    store: S3Store, client: S3Client
) -> None:
    client.create_multipart_upload(Bucket=BUCKET, Key="incoming/crashed")
    client.put_object(Bucket=BUCKET, Key="incoming/left-over", Body=b"x")
    client.create_multipart_upload(Bucket=BUCKET, Key="someone-else/upload")
    assert store.sweep_partials(datetime.now(UTC) + timedelta(hours=1)) == 2
    assert [upload["Key"] for upload in _uploads(client)] == ["someone-else/upload"]
    assert _keys(client) == []


def test_objects_outside_blobs_are_not_listed(store: S3Store, client: S3Client) -> None:
    client.put_object(Bucket=BUCKET, Key="README", Body=b"not a blob")
    client.put_object(Bucket=BUCKET, Key="blobs/zz/not-a-sha", Body=b"x")
    assert list(store.list()) == []


def test_a_size_mismatch_is_caught_from_the_headers_before_reading(store: S3Store) -> None:
    blob = store.put(in_chunks(body_of(1000)))
    with pytest.raises(IntegrityError, match="holds 1000 bytes"):
        store.get(blob.locators, sha256=blob.sha256, size=999)


@pytest.mark.seaweedfs
def test_sweep_partials_spares_uploads_still_in_progress(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str
) -> None:
    store = open_store(seaweedfs.store_url(seaweedfs_bucket))
    assert isinstance(store, S3Store)
    with closing(seaweedfs.client()) as client:
        upload = client.create_multipart_upload(Bucket=seaweedfs_bucket, Key="incoming/live")
        assert store.sweep_partials(datetime.now(UTC) - timedelta(hours=1)) == 0
        assert store.sweep_partials(datetime.now(UTC) + timedelta(hours=1)) == 1
        uploads = client.list_multipart_uploads(Bucket=seaweedfs_bucket).get("Uploads", [])
        assert upload["UploadId"] not in [item["UploadId"] for item in uploads]
    store.close()


def _stubbed_store() -> tuple[S3Store, Stubber]:
    """An S3 store whose client answers from a botocore Stubber, in the order expected."""
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        endpoint_url="http://127.0.0.1:9",
    )
    return S3Store(BUCKET, client=s3, multipart_threshold=8 * MIB), Stubber(s3)


def _eight_mib_then_failure() -> Iterator[bytes]:
    """Enough to start a multipart upload, then the source fails before any part is cut."""
    yield from in_chunks(body_of(8 * MIB), MIB)
    raise ConnectionResetError("client went away")


def test_an_upload_a_late_part_re_created_is_aborted_again() -> None:
    store, stub = _stubbed_store()
    upload = {"Bucket": BUCKET, "Key": ANY, "UploadId": "u1"}
    stub.add_response("create_multipart_upload", {"UploadId": "u1"}, {"Bucket": BUCKET, "Key": ANY})
    stub.add_response("abort_multipart_upload", {}, upload)
    # A part that was on its way when the abort arrived: the upload is there again.
    stub.add_response("list_parts", {"Parts": [{"PartNumber": 1}]}, {**upload, "MaxParts": 1})
    stub.add_response("abort_multipart_upload", {}, upload)
    stub.add_client_error("list_parts", "NoSuchUpload", expected_params={**upload, "MaxParts": 1})
    with stub, pytest.raises(ConnectionResetError):
        store.put(_eight_mib_then_failure())
    stub.assert_no_pending_responses()


def test_an_abort_cut_off_by_the_link_is_tried_again() -> None:
    store, stub = _stubbed_store()
    upload = {"Bucket": BUCKET, "Key": ANY, "UploadId": "u1"}
    stub.add_response("create_multipart_upload", {"UploadId": "u1"}, {"Bucket": BUCKET, "Key": ANY})
    stub.add_client_error("abort_multipart_upload", "ServiceUnavailable", http_status_code=503)
    stub.add_response("abort_multipart_upload", {}, upload)
    stub.add_client_error("list_parts", "NoSuchUpload", expected_params={**upload, "MaxParts": 1})
    with stub, pytest.raises(ConnectionResetError):
        store.put(_eight_mib_then_failure())
    stub.assert_no_pending_responses()
