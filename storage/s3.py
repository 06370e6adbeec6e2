"""The S3 blob store (``s3://bucket?endpoint_url=...``): AWS, MinIO, SeaweedFS, any S3 API.

Bodies live at ``blobs/ab/<sha256>`` in one bucket. A body smaller than the multipart
threshold is buffered (it is small) and sent with one PutObject once its SHA-256 is known.
A larger body is sent as a multipart upload in parts of ``part_size`` (8 MiB or more) while
it is hashed, so at most one part is held in memory; every failure aborts the upload, so
no incomplete body becomes visible. Because a key is the SHA-256 of the body, a large
upload whose SHA-256 the caller did not announce goes to ``incoming/<random>`` first and
is copied into place by the server once the hash is known; announcing the SHA-256
(``put(..., sha256=...)``) writes straight to the final key and is checked before the
upload is completed.

Locators are ``s3://<name>/blobs/ab/<sha256>``, where the name defaults to the bucket: the
usual S3 URI, with no endpoint or credentials in it.
"""

from __future__ import annotations

import contextlib
import email.utils
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import boto3
import botocore.exceptions as boto_errors
import botocore.session
import botocore.utils
import urllib3.exceptions
from botocore.config import Config

from storage._config import StoreURL, check_store_name, redact
from storage._keyed import KeyedStore, Opened
from storage._s3_multipart import ABORT_TRIES, MIB, Multipart
from storage._streams import CHUNK_SIZE, Digest, blob_key, sha256_of_key
from storage.errors import (
    BlobNotFound,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
)
from storage.types import BlobInfo, Source, StoredBlob

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "ABORT_TRIES",
    "DEFAULT_PART_SIZE",
    "DEFAULT_UPLOAD_CONCURRENCY",
    "INCOMING_PREFIX",
    "MIB",
    "MIN_PART_SIZE",
    "S3Store",
]

#: S3 refuses parts under 5 MiB (except the last); we default to 8 MiB.
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 8 * MIB
#: Two parts in flight keep the connection busy while the next part is read and hashed;
#: memory stays near three parts (measured in bench.storage_memory).
DEFAULT_UPLOAD_CONCURRENCY = 2
INCOMING_PREFIX = "incoming/"
_PARAMS = (
    "endpoint_url",
    "region",
    "name",
    "profile",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "addressing_style",
    "multipart_threshold",
    "part_size",
    "connect_timeout",
    "read_timeout",
    "max_attempts",
    "upload_concurrency",
)
_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AccountProblem",
}
_BUSY = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "NoSuchUpload",
    "OperationAborted",
}


@contextlib.contextmanager
def _map_errors(store: str, bucket: str, endpoint: str, what: str) -> Iterator[None]:
    """Translate boto3, botocore and urllib3 errors into the storage tree (the one place)."""
    try:
        yield
    except StorageError:
        raise
    except boto_errors.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = error.get("Message") or code or f"HTTP {status}"
        if code == "NoSuchBucket":
            raise StoreMisconfigured(
                f"store {store!r}: bucket {bucket!r} does not exist at {endpoint}; "
                "create it or fix the bucket name in the store URL",
                store=store,
            ) from exc
        if code in _BUSY or status >= 500 or status in (408, 429):
            raise StoreUnavailable(
                f"store {store!r} failed on {what}: {message} (HTTP {status}); retry later",
                store=store,
            ) from exc
        if code in _NOT_FOUND or status == 404:
            raise BlobNotFound(f"store {store!r} has no {what}", store=store) from exc
        if code in _DENIED or status in (401, 403):
            raise StoreMisconfigured(
                f"store {store!r}: access denied to bucket {bucket!r} at {endpoint} ({code}); "
                "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile or "
                "access_key_id/secret_access_key in the URL) and the bucket policy",
                store=store,
            ) from exc
        raise StoreMisconfigured(
            f"store {store!r} refused {what}: {code}: {message} (HTTP {status}); "
            "check the region, endpoint_url and addressing_style",
            store=store,
        ) from exc
    except (
        boto_errors.NoCredentialsError,
        boto_errors.PartialCredentialsError,
        boto_errors.CredentialRetrievalError,
        boto_errors.ProfileNotFound,
    ) as exc:
        raise StoreMisconfigured(
            f"store {store!r}: no usable S3 credentials ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile, or access_key_id/secret_access_key in the URL",
            store=store,
        ) from exc
    except (boto_errors.NoRegionError, boto_errors.InvalidRegionError) as exc:
        raise StoreMisconfigured(
            f"store {store!r}: {exc}; add region=... to the store URL", store=store
        ) from exc
    except boto_errors.ParamValidationError as exc:
        raise StoreMisconfigured(
            f"store {store!r}: S3 rejected the parameters of {what}: {exc}", store=store
        ) from exc
    except (
        boto_errors.EndpointConnectionError,
        boto_errors.ConnectTimeoutError,
        boto_errors.ReadTimeoutError,
        boto_errors.ConnectionError,
        boto_errors.HTTPClientError,
        boto_errors.ResponseStreamingError,
        boto_errors.IncompleteReadError,
        urllib3.exceptions.HTTPError,
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise StoreUnavailable(
            f"store {store!r}: cannot reach S3 at {endpoint} during {what} ({exc}); "
            "check that the server is running and endpoint_url is right",
            store=store,
        ) from exc
    except boto_errors.BotoCoreError as exc:
        raise StoreUnavailable(f"store {store!r} failed on {what}: {exc}", store=store) from exc


class S3Store(KeyedStore):
    """Bodies in one S3 bucket."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        name: str | None = None,
        client: S3Client | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        addressing_style: str | None = None,
        multipart_threshold: int = DEFAULT_PART_SIZE,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY,
    ) -> None:
        self._bucket = bucket
        self._name = check_store_name(name or bucket)
        if part_size < MIN_PART_SIZE:
            raise StoreMisconfigured(f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB)")
        self._part_size = part_size
        self._threshold = max(multipart_threshold, 1)
        if not 1 <= upload_concurrency <= 16:
            raise StoreMisconfigured("upload_concurrency must be between 1 and 16")
        self._concurrency = upload_concurrency
        self._endpoint = endpoint_url or "AWS S3"
        style: Literal["auto", "virtual", "path"]
        if addressing_style is None:
            # Custom endpoints (MinIO, SeaweedFS) rarely have per-bucket DNS names.
            style = "path" if endpoint_url else "auto"
        elif addressing_style in ("path", "virtual", "auto"):
            style = addressing_style  # type: ignore[assignment]
        else:
            raise StoreMisconfigured(
                f"addressing_style={addressing_style!r}: use path, virtual or auto"
            )
        if client is None:
            if (access_key_id is None) != (secret_access_key is None):
                raise StoreMisconfigured(
                    "give both access_key_id and secret_access_key in the store URL, or neither"
                )
            config = Config(
                s3={"addressing_style": style},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                max_pool_connections=max(10, 2 * upload_concurrency),
                # total_max_attempts counts the first try; botocore's max_attempts would
                # count retries only, so max_attempts=1 would still make two requests.
                retries={"total_max_attempts": max_attempts, "mode": "standard"},
                # We check the SHA-256 of every body ourselves; extra CRCs cost CPU and
                # trip up some S3-compatible servers.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            with _map_errors(self._name, bucket, self._endpoint, "client setup"):
                core = botocore.session.get_session()
                # botocore parses every LastModified with dateutil, a good part of the
                # Python time of a small GET (bench.gateway_http profile); S3 sends two
                # fixed forms, which the standard library parses far faster.
                core.get_component("response_parser_factory").set_parser_defaults(
                    timestamp_parser=_parse_timestamp
                )
                session = boto3.session.Session(
                    botocore_session=core,
                    profile_name=profile,
                    aws_access_key_id=access_key_id,
                    aws_secret_access_key=secret_access_key,
                    aws_session_token=session_token,
                )
                region = region or session.region_name or ("us-east-1" if endpoint_url else None)
                try:
                    client = session.client(
                        "s3", endpoint_url=endpoint_url, region_name=region, config=config
                    )
                except ValueError as exc:
                    raise StoreMisconfigured(
                        f"store {self._name!r}: bad endpoint_url or region: {exc}",
                        store=self._name,
                    ) from exc
        self._client: S3Client = client
        self._multipart = Multipart(
            client,
            bucket,
            self._errors,
            part_size=part_size,
            concurrency=upload_concurrency,
        )

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        parsed = StoreURL.parse(url)
        bucket = parsed.netloc
        if not bucket or "@" in bucket or ":" in bucket:
            raise StoreMisconfigured(
                f"{redact(url)} has no bucket; write s3://BUCKET?endpoint_url=http://host:port"
            )
        if parsed.path not in ("", "/"):
            raise StoreMisconfigured(
                f"{redact(url)}: key prefixes are not supported; give ehrgate its own bucket"
            )
        endpoint_url = parsed.take("endpoint_url")
        if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
            raise StoreMisconfigured(
                f"endpoint_url={endpoint_url!r} in {redact(url)} must start with http:// or https://"
            )
        max_attempts = parsed.take_int("max_attempts", 3, minimum=1)
        upload_concurrency = parsed.take_int(
            "upload_concurrency", DEFAULT_UPLOAD_CONCURRENCY, minimum=1
        )
        store = cls(
            bucket,
            name=parsed.take_name(bucket),
            endpoint_url=endpoint_url,
            region=parsed.take("region"),
            profile=parsed.take("profile"),
            access_key_id=parsed.take("access_key_id"),
            secret_access_key=parsed.take("secret_access_key"),
            session_token=parsed.take("session_token"),
            addressing_style=parsed.take("addressing_style"),
            multipart_threshold=parsed.take_size("multipart_threshold", DEFAULT_PART_SIZE),
            part_size=parsed.take_size("part_size", DEFAULT_PART_SIZE, minimum=MIN_PART_SIZE),
            connect_timeout=parsed.take_float("connect_timeout", 5.0),
            read_timeout=parsed.take_float("read_timeout", 60.0),
            max_attempts=max_attempts,
            upload_concurrency=upload_concurrency,
        )
        parsed.finish(_PARAMS)
        return store

    @property
    def bucket(self) -> str:
        return self._bucket

    def __repr__(self) -> str:
        return f"S3Store(name={self._name!r}, bucket={self._bucket!r}, endpoint={self._endpoint!r})"

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _map_errors(self._name, self._bucket, self._endpoint, what)

    # -- checks -------------------------------------------------------------------------

    def check(self) -> None:
        with self._errors("a check of the bucket"):
            try:
                self._client.head_bucket(Bucket=self._bucket)
            except boto_errors.ClientError as exc:
                # HeadBucket has no body, so a missing bucket shows only as a bare 404.
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404:
                    raise StoreMisconfigured(
                        f"store {self._name!r}: bucket {self._bucket!r} does not exist at "
                        f"{self._endpoint}; create it or fix the bucket name in the store URL",
                        store=self._name,
                    ) from exc
                raise

    # -- put ----------------------------------------------------------------------------

    def put(self, source: Source, *, sha256: str | None = None) -> StoredBlob:
        digest, chunks = self._hashing(source, sha256)
        buffer = bytearray()
        for chunk in chunks:
            buffer += chunk
            if len(buffer) >= self._threshold:
                return self._put_multipart(buffer, chunks, digest, sha256)
        actual = self._hashed(digest, sha256)
        with self._errors(f"upload of body {actual}"):
            self._client.put_object(Bucket=self._bucket, Key=blob_key(actual), Body=bytes(buffer))
        return self._stored(actual, digest.size)

    def _put_multipart(
        self, buffer: bytearray, chunks: Iterator[bytes], digest: Digest, expected: str | None
    ) -> StoredBlob:
        key = blob_key(expected) if expected else f"{INCOMING_PREFIX}{uuid.uuid4().hex}"
        actual = self._multipart.upload(key, buffer, chunks, lambda: self._hashed(digest, expected))
        if key != blob_key(actual):
            self._multipart.move_into_place(key, actual)
        return self._stored(actual, digest.size)

    # -- get, head, delete, list -------------------------------------------------------

    def _open(self, sha256: str) -> Opened:
        answer = self._client.get_object(Bucket=self._bucket, Key=blob_key(sha256))
        body = answer["Body"]
        return body.iter_chunks(CHUNK_SIZE), body.close, answer.get("ContentLength")

    def head(self, locator: str) -> BlobInfo:
        sha = self._sha256_of(locator)
        with self._errors(f"body {sha}"):
            answer = self._client.head_object(Bucket=self._bucket, Key=blob_key(sha))
        return BlobInfo(sha, answer["ContentLength"], locator, _utc(answer["LastModified"]))

    def delete(self, locator: str) -> None:
        sha = self._sha256_of(locator)
        with self._errors(f"removal of body {sha}"):
            self._client.delete_object(Bucket=self._bucket, Key=blob_key(sha))

    def list(self) -> Iterator[BlobInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("listing of the bucket"):
            pages = iter(paginator.paginate(Bucket=self._bucket, Prefix="blobs/"))
        for page in self._guarded(pages, "listing of the bucket"):
            for entry in page.get("Contents", []):
                sha = sha256_of_key(entry["Key"])
                if sha is not None:
                    yield BlobInfo(
                        sha, entry["Size"], self.locator(sha), _utc(entry["LastModified"])
                    )

    def sweep_partials(self, older_than: datetime) -> int:
        """Abort multipart uploads and remove temporary objects started before
        ``older_than`` (left by a crash); return how many were removed."""
        removed = 0
        with self._errors("listing of multipart uploads"):
            uploads = self._client.list_multipart_uploads(Bucket=self._bucket).get("Uploads", [])
        for upload in uploads:
            key = upload.get("Key", "")
            if not key.startswith(("blobs/", INCOMING_PREFIX)):
                continue
            if _utc(upload["Initiated"]) < older_than:
                self._multipart.abort(key, upload["UploadId"])
                removed += 1
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("listing of temporary uploads"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=INCOMING_PREFIX):
                for entry in page.get("Contents", []):
                    if _utc(entry["LastModified"]) < older_than:
                        self._client.delete_object(Bucket=self._bucket, Key=entry["Key"])
                        removed += 1
        return removed

    def close(self) -> None:
        self._client.close()


def _parse_timestamp(value: str) -> datetime:
    """A timestamp of an S3 answer: ISO 8601 in XML bodies, RFC 7231 in headers."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return botocore.utils.parse_timestamp(value)  # any other form botocore knows


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
