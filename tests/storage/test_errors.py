"""Every upstream error a backend can meet is translated into the storage exception tree."""

from __future__ import annotations

import errno
import inspect
import json
from collections.abc import Iterator
from typing import Any

import botocore.exceptions as boto_errors
import httpx
import pytest
import urllib3.exceptions

import storage
from storage import errors as storage_errors
from storage._kubo import KuboError, map_errors as map_ipfs
from storage.errors import (
    BlobNotFound,
    IntegrityError,
    InvalidLocator,
    QuorumNotReached,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
)
from storage.local import _map_errors as map_local
from storage.s3 import _map_errors as map_s3

NO_POOL: Any = None
REQUEST = httpx.Request("POST", "http://127.0.0.1:5001/api/v0/cat")


def _client_error(code: str, status: int, operation: str = "GetObject") -> Exception:
    answer: Any = {"Error": {"Code": code, "Message": code}}
    answer["ResponseMetadata"] = {"HTTPStatusCode": status}
    return boto_errors.ClientError(answer, operation)


def _raise_through_s3(error: BaseException) -> StorageError:
    with pytest.raises(StorageError) as caught, map_s3("s3-a", "bucket", "http://x", "a test"):
        raise error
    assert caught.value.__cause__ is error
    assert caught.value.store == "s3-a"
    return caught.value


S3_ERRORS: list[tuple[BaseException, type[StorageError]]] = [
    (_client_error("NoSuchKey", 404), BlobNotFound),
    (_client_error("404", 404, "HeadObject"), BlobNotFound),
    (_client_error("NoSuchBucket", 404), StoreMisconfigured),
    (_client_error("AccessDenied", 403), StoreMisconfigured),
    (_client_error("InvalidAccessKeyId", 403), StoreMisconfigured),
    (_client_error("SignatureDoesNotMatch", 403), StoreMisconfigured),
    (_client_error("PermanentRedirect", 301), StoreMisconfigured),
    (_client_error("SlowDown", 503), StoreUnavailable),
    (_client_error("InternalError", 500), StoreUnavailable),
    (_client_error("ServiceUnavailable", 503), StoreUnavailable),
    (_client_error("NoSuchUpload", 404, "UploadPart"), StoreUnavailable),
    (_client_error("RequestTimeout", 400), StoreUnavailable),
    (boto_errors.EndpointConnectionError(endpoint_url="http://x"), StoreUnavailable),
    (boto_errors.ConnectTimeoutError(endpoint_url="http://x"), StoreUnavailable),
    (boto_errors.ReadTimeoutError(endpoint_url="http://x"), StoreUnavailable),
    (boto_errors.ConnectionClosedError(endpoint_url="http://x"), StoreUnavailable),
    (boto_errors.ResponseStreamingError(error="reset"), StoreUnavailable),
    (boto_errors.IncompleteReadError(actual_bytes=1, expected_bytes=2), StoreUnavailable),
    (urllib3.exceptions.ProtocolError("connection broken"), StoreUnavailable),
    (urllib3.exceptions.ReadTimeoutError(NO_POOL, "/x", "timed out"), StoreUnavailable),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), StoreUnavailable),
    (TimeoutError("timed out"), StoreUnavailable),
    (boto_errors.NoCredentialsError(), StoreMisconfigured),
    (boto_errors.PartialCredentialsError(provider="env", cred_var="secret"), StoreMisconfigured),
    (boto_errors.ProfileNotFound(profile="hospital"), StoreMisconfigured),
    (boto_errors.NoRegionError(), StoreMisconfigured),
    (boto_errors.ParamValidationError(report="bad bucket name"), StoreMisconfigured),
]


@pytest.mark.parametrize(("error", "expected"), S3_ERRORS, ids=lambda v: type(v).__name__)
def test_s3_errors_are_mapped(error: BaseException, expected: type[StorageError]) -> None:
    assert type(_raise_through_s3(error)) is expected


def _subclasses(root: type[BaseException]) -> Iterator[type[BaseException]]:
    for cls in root.__subclasses__():
        yield cls
        yield from _subclasses(cls)


def _bare_instance(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` without running its constructor's formatting."""
    error = cls.__new__(cls)
    Exception.__init__(error, f"a {cls.__name__}")
    error.kwargs = {}  # type: ignore[attr-defined]
    return error


BOTOCORE_CLASSES = sorted(
    {cls for cls in _subclasses(boto_errors.BotoCoreError) if cls.__module__.startswith("boto")},
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("cls", BOTOCORE_CLASSES, ids=lambda cls: cls.__name__)
def test_no_botocore_error_escapes_the_s3_backend(cls: type[BaseException]) -> None:
    _raise_through_s3(_bare_instance(cls))


def test_a_store_error_passes_through_unchanged() -> None:
    original = IntegrityError("bad copy", store="s3-a")
    with pytest.raises(IntegrityError) as caught, map_s3("s3-a", "b", "e", "x"):
        raise original
    assert caught.value is original


# -- IPFS -----------------------------------------------------------------------------------


def _raise_through_ipfs(error: BaseException) -> StorageError:
    with pytest.raises(StorageError) as caught, map_ipfs("kubo-a", "http://x:5001", "a test"):
        raise error
    assert caught.value.__cause__ is error
    assert caught.value.store == "kubo-a"
    return caught.value


IPFS_ERRORS: list[tuple[BaseException, type[StorageError]]] = [
    (
        KuboError(500, "block was not found locally (offline): ipld: could not find bafk", "cat"),
        BlobNotFound,
    ),
    (KuboError(500, "not pinned or pinned indirectly", "pin/rm"), BlobNotFound),
    (KuboError(500, "path 'bafk' is not pinned", "pin/ls"), BlobNotFound),
    (
        KuboError(500, 'invalid path "x": invalid cid: selected encoding not supported', "cat"),
        InvalidLocator,
    ),
    (KuboError(500, "context deadline exceeded", "cat"), StoreUnavailable),
    (KuboError(500, "blockstore: write: no space left on device", "add"), StoreUnavailable),
    (KuboError(400, 'unrecognized option "cid-version"', "add"), StoreMisconfigured),
    (KuboError(403, "403 - Forbidden", "add"), StoreMisconfigured),
    (KuboError(401, "Unauthorized", "add"), StoreMisconfigured),
    (KuboError(404, "404 page not found", "version"), StoreMisconfigured),
    (KuboError(405, "405 - Method Not Allowed", "version"), StoreMisconfigured),
    (KuboError(502, "Bad Gateway", "add"), StoreUnavailable),
    (httpx.ConnectError("[Errno 111] Connection refused", request=REQUEST), StoreUnavailable),
    (httpx.ConnectTimeout("timed out", request=REQUEST), StoreUnavailable),
    (httpx.ReadTimeout("timed out", request=REQUEST), StoreUnavailable),
    (httpx.WriteTimeout("timed out", request=REQUEST), StoreUnavailable),
    (httpx.PoolTimeout("timed out", request=REQUEST), StoreUnavailable),
    (httpx.RemoteProtocolError("peer closed connection", request=REQUEST), StoreUnavailable),
    (httpx.ReadError("reset", request=REQUEST), StoreUnavailable),
    (json.JSONDecodeError("Expecting value", "<html>", 0), StoreMisconfigured),
]


@pytest.mark.parametrize(("error", "expected"), IPFS_ERRORS, ids=lambda v: str(v)[:40])
def test_ipfs_errors_are_mapped(error: BaseException, expected: type[StorageError]) -> None:
    assert type(_raise_through_ipfs(error)) is expected


HTTPX_CLASSES = sorted(set(_subclasses(httpx.HTTPError)), key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", HTTPX_CLASSES, ids=lambda cls: cls.__name__)
def test_no_httpx_error_escapes_the_ipfs_backend(cls: type[BaseException]) -> None:
    error = cls.__new__(cls)
    Exception.__init__(error, f"a {cls.__name__}")
    _raise_through_ipfs(error)


def test_httpx_transport_errors_are_unavailable() -> None:
    for cls in _subclasses(httpx.TransportError):
        error = cls.__new__(cls)
        Exception.__init__(error, "x")
        assert isinstance(_raise_through_ipfs(error), StoreUnavailable), cls


# -- local ------------------------------------------------------------------------------------

LOCAL_ERRORS: list[tuple[BaseException, type[StorageError]]] = [
    (FileNotFoundError(errno.ENOENT, "No such file"), BlobNotFound),
    (PermissionError(errno.EACCES, "Permission denied"), StoreMisconfigured),
    (OSError(errno.ENOSPC, "No space left on device"), StoreUnavailable),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), StoreUnavailable),
    (OSError(errno.EIO, "Input/output error"), StoreUnavailable),
]


@pytest.mark.parametrize(("error", "expected"), LOCAL_ERRORS, ids=lambda v: str(v)[:30])
def test_local_errors_are_mapped(error: BaseException, expected: type[StorageError]) -> None:
    with pytest.raises(StorageError) as caught, map_local("disk", "a test"):
        raise error
    assert type(caught.value) is expected
    assert caught.value.__cause__ is error


# -- the tree itself ----------------------------------------------------------------------------


def test_blob_not_found_is_also_a_file_not_found_error_with_its_message() -> None:
    error = BlobNotFound("store 'a' has no body x", store="a")
    assert isinstance(error, FileNotFoundError)
    assert str(error) == "store 'a' has no body x"


def test_quorum_not_reached_is_unavailable_and_misconfigured_is_a_value_error() -> None:
    assert issubclass(QuorumNotReached, StoreUnavailable)
    assert issubclass(StoreMisconfigured, ValueError)
    assert issubclass(InvalidLocator, ValueError)


def test_every_storage_error_descends_from_the_root() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(storage_errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == storage_errors.__name__
    ]
    assert classes
    assert all(issubclass(cls, StorageError) for cls in classes)


def test_public_names_are_exported() -> None:
    assert sorted(storage.__all__) == sorted(set(storage.__all__))
    for name in storage.__all__:
        assert hasattr(storage, name), name
