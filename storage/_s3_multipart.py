"""Multipart uploads of the S3 store: parts cut from the body while it is hashed, a few in
flight at a time, and on any failure an abort that is checked to have taken.

Memory stays at about (concurrency + 1) parts however large the body is: the next part is
cut only when a slot is free. A body whose SHA-256 was not announced is uploaded under a
temporary key and copied into place by the server once its hash is known.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import botocore.exceptions as boto_errors
from boto3.s3.transfer import TransferConfig

from storage._streams import blob_key
from storage.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIB = 1024 * 1024
#: Aborting a multipart upload is a clean-up: tried this many times, each with its retries.
ABORT_TRIES = 3

# The S3 store's logger: these are its uploads.
log = logging.getLogger("storage.s3")

Errors = Callable[[str], contextlib.AbstractContextManager[None]]


class Multipart:
    """The multipart uploads of one bucket; ``errors`` is the S3 store's error map."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        errors: Errors,
        *,
        part_size: int,
        concurrency: int,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._errors = errors
        self.part_size = part_size
        self.concurrency = concurrency

    def upload(
        self,
        key: str,
        buffer: bytearray,
        chunks: Iterator[bytes],
        hashed: Callable[[], str],
    ) -> str:
        """Upload ``buffer`` and the rest of ``chunks`` to ``key`` as one multipart upload.
        Once all is sent, ``hashed()`` gives the body's SHA-256 or raises (a SHA-256 other
        than the announced one); only then is the upload completed. Any failure aborts it."""
        with self._errors("start of a multipart upload"):
            upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=key)[
                "UploadId"
            ]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="s3-part") as pool:
            parts = _Parts(self, pool, key, upload_id)
            try:
                parts.send_all(buffer, chunks)
                actual = hashed()
                with self._errors("completion of a multipart upload"):
                    self._client.complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts.done},
                    )
            except BaseException:
                parts.cancel()
                self.abort(key, upload_id)
                raise
        return actual

    def send_part(self, key: str, upload_id: str, number: int, part: bytes) -> CompletedPartTypeDef:
        with self._errors(f"upload of part {number}"):
            answer = self._client.upload_part(
                Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def abort(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload and make sure it is gone.

        The abort is a clean-up after a failure, often over the same bad link, so it is
        tried up to ABORT_TRIES times whatever ``max_attempts`` says. After each abort the
        upload is listed: a part that was still on its way can re-create it (the S3 docs say
        to check with ListParts), and then it is aborted again.
        """
        for attempt in range(1, ABORT_TRIES + 1):
            try:
                with self._errors("abort of a multipart upload"):
                    if self._abort_once(key, upload_id):
                        return
            except StorageError as exc:
                if attempt == ABORT_TRIES:
                    # sweep_partials removes what this could not.
                    log.warning(
                        "could not abort multipart upload %s of %s: %s", upload_id, key, exc
                    )
                    return
        log.warning(
            "multipart upload %s of %s still has parts after %d aborts", upload_id, key, ABORT_TRIES
        )

    def _abort_once(self, key: str, upload_id: str) -> bool:
        """One abort, then a look: True when S3 no longer knows the upload."""
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
            self._client.list_parts(Bucket=self._bucket, Key=key, UploadId=upload_id, MaxParts=1)
        except boto_errors.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return True
            raise
        return False

    def move_into_place(self, temp_key: str, sha256: str) -> None:
        """Copy a body uploaded under ``temp_key`` to its final key, then remove the temporary
        object (a failure to remove it is only logged: sweep_partials will)."""
        try:
            with self._errors(f"copy of body {sha256} into place"):
                self._client.copy(
                    {"Bucket": self._bucket, "Key": temp_key},
                    self._bucket,
                    blob_key(sha256),
                    Config=TransferConfig(multipart_threshold=5 * 1024 * MIB),
                )
        finally:
            try:
                with self._errors("removal of a temporary upload"):
                    self._client.delete_object(Bucket=self._bucket, Key=temp_key)
            except StorageError as exc:
                log.warning("could not remove temporary upload %s: %s", temp_key, exc)


class _Parts:
    """The parts of one upload: those completed, and at most ``concurrency`` in flight."""

    def __init__(
        self, uploads: Multipart, pool: ThreadPoolExecutor, key: str, upload_id: str
    ) -> None:
        self._uploads = uploads
        self._pool = pool
        self._key = key
        self._upload_id = upload_id
        self.done: list[CompletedPartTypeDef] = []
        self._in_flight: deque[Future[CompletedPartTypeDef]] = deque()

    def send_all(self, buffer: bytearray, chunks: Iterator[bytes]) -> None:
        part_size = self._uploads.part_size
        for chunk in chunks:
            buffer += chunk
            while len(buffer) >= part_size:
                self._submit(buffer, part_size)
        if buffer or not (self.done or self._in_flight):
            self._submit(buffer, len(buffer))
        while self._in_flight:
            self.done.append(self._in_flight.popleft().result())

    def _submit(self, buffer: bytearray, size: int) -> None:
        # Wait for a free slot before the next part is cut out of the buffer.
        if len(self._in_flight) >= self._uploads.concurrency:
            self.done.append(self._in_flight.popleft().result())
        number = len(self.done) + len(self._in_flight) + 1
        part = _take(buffer, size)
        self._in_flight.append(
            self._pool.submit(self._uploads.send_part, self._key, self._upload_id, number, part)
        )

    def cancel(self) -> None:
        """Cancel the parts not yet started and wait for those on their way."""
        for future in self._in_flight:
            future.cancel()
        wait(self._in_flight)


def _take(buffer: bytearray, size: int) -> bytes:
    """Remove and return the first ``size`` bytes of ``buffer``, copying them once."""
    with memoryview(buffer) as view:
        part = bytes(view[:size])
    del buffer[:size]
    return part
