"""Uploads: a body sealed to the patient here, streamed to the gateway, committed as a record.

Each body is sealed to the patient's published key of the record's category and of the
month of its created_at (`ehrgate._client.keys`, checked against the patient's signed
entry on the ledger); a month the patient has published no key for is refused before
anything is stored.

Bodies up to `SPOOL_LIMIT` are sealed in memory first, so that the upload announces their
SHA-256 and length and can be repeated after a connection failure; larger ones are sealed
while they stream (memory stays at about one read). The `record` transaction is signed
here once the gateway stored the body with the SHA-256 and size that were sealed.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from ehrgate._client.directory import Directory
from ehrgate._client.keys import ScopedKeys
from ehrgate._client.session import Session, TimeLike, json_of, ledger_now, ledger_time
from ehrgate._client.trust import Trust
from ehrgate.errors import Conflict, MalformedAnswer, UsageError, VerificationFailed
from ehrgate.models import Record, Uploaded
from envelope import (
    EnvelopeError,
    IdentityKeys,
    Sealer,
    SealResult,
    b64encode,
)
from ledger.wire import builders

SPOOL_LIMIT = 16 * 1024 * 1024
READ_SIZE = 1024 * 1024
_OCTETS = {"Content-Type": "application/octet-stream"}

Source = str | os.PathLike[str] | IO[bytes]


class Uploads:
    """Seals, stores and commits records for one client."""

    def __init__(
        self, session: Session, trust: Trust, directory: Directory, keys: ScopedKeys
    ) -> None:
        self._session = session
        self._trust = trust
        self._directory = directory
        self._keys = keys

    def upload(
        self,
        source: Source,
        *,
        pseudonym: str,
        category: str,
        filename: str | None = None,
        content_type: str | None = None,
        record_id: str | None = None,
        created_at: TimeLike | None = None,
    ) -> Uploaded:
        """Seal *source* (a path or a binary stream) to the patient and commit it as a record.

        One call: the sealed body is streamed to `POST /v1/blobs` (for *pseudonym* and
        *category*: the caller needs a write right valid now, or `Denied` is raised before
        anything is stored), then a `record` signed
        here is committed with the capsule; its receipt is verified before returning.
        *record_id* may be chosen by the caller (the importer does, to be idempotent);
        `RecordExists` is raised when the ledger already has it. If the patient rotated its
        key since this client looked its published key up, the upload is sealed anew to the
        current key (once; a stream must then be seekable).
        """
        position = _position(source)
        try:
            return self._upload(
                source, pseudonym, category, filename, content_type, record_id, created_at
            )
        except Conflict as exc:
            if exc.code != "stale-key-generation" or position is None:
                raise
            self._keys.forget()
            if not isinstance(source, str | os.PathLike):
                source.seek(position)
            return self._upload(
                source, pseudonym, category, filename, content_type, record_id, created_at
            )

    def _upload(
        self,
        source: Source,
        pseudonym: str,
        category: str,
        filename: str | None,
        content_type: str | None,
        record_id: str | None,
        created_at: TimeLike | None,
    ) -> Uploaded:
        signer = self._session.signer()
        with contextlib.ExitStack() as cleanup:
            stream, name = _open(source, filename, cleanup)
            media_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
            created = ledger_time(created_at) if created_at is not None else ledger_now()
            sealer = self._sealer(signer, pseudonym, category, name, media_type, created)
            cleanup.callback(sealer.close)
            blob = self._store(stream, sealer, {"pseudonym": pseudonym, "category": category})
        return self.commit(
            signer, sealer.result, blob, pseudonym, category, name, media_type, created, record_id
        )

    def commit(
        self,
        signer: IdentityKeys,
        result: SealResult,
        blob: dict[str, Any],
        pseudonym: str,
        category: str,
        name: str,
        media_type: str,
        created: str,
        record_id: str | None,
    ) -> Uploaded:
        """Sign and commit the `record` of a body the gateway stored (its answer *blob*)."""
        tx = builders.record(
            signer,
            pseudonym=pseudonym,
            category=category,
            body_sha256=result.body_sha256,
            size=result.body_size,
            locators=_locators(blob, result),
            capsule_sha256=result.capsule_sha256,
            content_type=media_type,
            created_at=created,
            record_id=record_id,
        )
        generation = self._keys.recipient_and_generation(pseudonym, category, created)[1]
        answer = self._session.post(
            "/v1/records",
            {
                "transaction": tx.to_json(),
                "capsule": b64encode(result.capsule),
                "key_generation": generation,
            },
        )
        record = Record.from_json(answer.get("record"))
        receipt = self._trust.receipt(answer, tx)
        return Uploaded(record, receipt, name, result.plaintext_sha256, result.plaintext_size)

    def _sealer(
        self,
        signer: IdentityKeys,
        pseudonym: str,
        category: str,
        name: str,
        media_type: str,
        created: str,
    ) -> Sealer:
        recipient = self._keys.recipient(pseudonym, category, created)
        try:
            return Sealer(
                recipients=[(pseudonym, recipient)],
                scoped=True,
                filename=name,
                content_type=media_type,
                pseudonym=pseudonym,
                category=category,
                created_at=created,
                uploader_id=signer.id,
                signer=signer,
            )
        except EnvelopeError as exc:
            raise UsageError(str(exc)) from exc

    def sealer_for(
        self, pseudonym: str, category: str, name: str, media_type: str, created: str
    ) -> tuple[IdentityKeys, Sealer]:
        """The signer and a sealer for one body (as `upload` makes them)."""
        signer = self._session.signer()
        return signer, self._sealer(signer, pseudonym, category, name, media_type, created)

    def _store(self, stream: IO[bytes], sealer: Sealer, params: dict[str, str]) -> dict[str, Any]:
        """`POST /v1/blobs` the sealed body for the patient and category in *params* (the
        gateway stores it only for a caller that may write those records now); the
        gateway's account of what it stored."""
        pieces, complete = _spool(stream, sealer)
        if not complete:
            return self.store_streamed(_streamed(pieces, stream, sealer), params)
        body = b"".join(pieces)
        response = self._session.connection.request(
            "POST",
            "/v1/blobs",
            params={**params, "sha256": hashlib.sha256(body).hexdigest()},
            content=body,
            headers=_OCTETS,
        )
        return _blob_answer(response)

    def store_streamed(self, pieces: Iterable[bytes], params: dict[str, str]) -> dict[str, Any]:
        """`POST /v1/blobs` sealed *pieces* as they come (no length or SHA-256 announced)."""
        response = self._session.connection.request(
            "POST", "/v1/blobs", params=params, content=pieces, headers=_OCTETS
        )
        return _blob_answer(response)


def _blob_answer(response: httpx.Response) -> dict[str, Any]:
    data = json_of(response)
    if not isinstance(data, dict):
        raise MalformedAnswer("the gateway's blob answer is not an object")
    return data


def _position(source: Source) -> int | None:
    """Where a seekable stream is (to read it again), 0 for a path, None otherwise."""
    if isinstance(source, str | os.PathLike):
        return 0
    try:
        return source.tell() if source.seekable() else None
    except (OSError, ValueError):
        return None


def _open(
    source: Source, filename: str | None, cleanup: contextlib.ExitStack
) -> tuple[IO[bytes], str]:
    """The stream to read and the file name to give; a path is opened (and closed) here."""
    if not isinstance(source, str | os.PathLike):
        return source, filename or "document"
    path = Path(source)
    try:
        stream = cleanup.enter_context(path.open("rb"))
    except FileNotFoundError as exc:
        raise UsageError(f"no file at {path}") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return stream, filename or path.name


def _spool(stream: IO[bytes], sealer: Sealer) -> tuple[list[bytes], bool]:
    """Seal up to about SPOOL_LIMIT bytes: the sealed pieces, and whether that was all."""
    pieces: list[bytes] = []
    held = 0
    try:
        while held <= SPOOL_LIMIT:
            chunk = stream.read(READ_SIZE)
            if not chunk:
                pieces.extend(bytes(piece) for piece in sealer.finalize_segments())
                return pieces, True
            for piece in sealer.update_segments(chunk):
                pieces.append(bytes(piece))
                held += len(piece)
    except OSError as exc:
        raise UsageError(f"cannot read the file to upload: {exc.strerror or exc}") from exc
    return pieces, False


def _streamed(pieces: list[bytes], stream: IO[bytes], sealer: Sealer) -> Iterator[bytes]:
    """The spooled pieces, then the rest of the body sealed as it is read."""
    yield from pieces
    pieces.clear()
    try:
        while chunk := stream.read(READ_SIZE):
            for piece in sealer.update_segments(chunk):
                yield bytes(piece)
    except OSError as exc:
        raise UsageError(f"cannot read the file to upload: {exc}") from exc
    for piece in sealer.finalize_segments():
        yield bytes(piece)


def _locators(blob: dict[str, Any], sealed: SealResult) -> list[str]:
    """Where the gateway stored the body, once it says it stored the body sealed here."""
    if blob.get("sha256") != sealed.body_sha256 or blob.get("size") != sealed.body_size:
        raise VerificationFailed(
            "the gateway stored a body with another SHA-256 or size than the one sealed"
        )
    locators = blob.get("locators")
    if not isinstance(locators, list) or not all(isinstance(x, str) for x in locators):
        raise MalformedAnswer("the gateway's blob answer has no locators")
    return locators
