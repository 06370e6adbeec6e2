"""Staged uploads: a body sealed and stored while it is still arriving, committed later.

For a caller that receives a document as a stream and may record it only once all of it
was checked (the bridge's ITI-105 publish checks a DocumentReference whose metadata may
follow the data): `stage_upload` seals the plaintext chunks as they come and streams the
sealed body to `POST /v1/blobs` (the gateway refuses it before storing anything unless the
caller may write the patient's records of that category now); `Staged.commit()` then signs
and commits the `record`, exactly as `upload` does. A body staged and never committed is
an orphan, as after a refused commit, and garbage collection removes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ehrgate._client.session import TimeLike, ledger_now, ledger_time
from ehrgate._client.upload import Uploads
from ehrgate.models import Uploaded
from envelope import IdentityKeys, Sealer


class StagedUploads:
    """Stages uploads for one client (`Client.stage_upload`)."""

    def __init__(self, uploads: Uploads) -> None:
        self._uploads = uploads

    def stage_upload(
        self,
        chunks: Iterable[bytes],
        *,
        pseudonym: str,
        category: str,
        filename: str,
        content_type: str,
        record_id: str | None = None,
        created_at: TimeLike | None = None,
    ) -> Staged:
        """Seal *chunks* (the plaintext, consumed as it comes) and store the sealed body.

        Returns once the gateway stored all of it; nothing is on the ledger until
        `Staged.commit()`. An exception raised by *chunks* ends the upload (the gateway
        stores nothing of a body cut short) and is raised here."""
        created = ledger_time(created_at) if created_at is not None else ledger_now()
        signer, sealer = self._uploads.sealer_for(
            pseudonym, category, filename, content_type, created
        )
        try:
            blob = self._uploads.store_streamed(
                _sealed(chunks, sealer), {"pseudonym": pseudonym, "category": category}
            )
        finally:
            sealer.close()
        return Staged(
            self._uploads,
            signer,
            sealer,
            blob,
            _Meta(pseudonym, category, filename, content_type, created, record_id),
        )


@dataclass(frozen=True, slots=True)
class _Meta:
    pseudonym: str
    category: str
    filename: str
    content_type: str
    created: str
    record_id: str | None


class Staged:
    """A sealed body the gateway stored, whose record is not committed yet."""

    def __init__(
        self,
        uploads: Uploads,
        signer: IdentityKeys,
        sealer: Sealer,
        blob: dict[str, object],
        meta: _Meta,
    ) -> None:
        self._uploads = uploads
        self._signer = signer
        self._result = sealer.result
        self._blob = blob
        self._meta = meta

    @property
    def plaintext_sha256(self) -> str:
        return self._result.plaintext_sha256

    def commit(self) -> Uploaded:
        """Commit the record (`RecordExists` when the ledger has its record id already)."""
        meta = self._meta
        return self._uploads.commit(
            self._signer,
            self._result,
            dict(self._blob),
            meta.pseudonym,
            meta.category,
            meta.filename,
            meta.content_type,
            meta.created,
            meta.record_id,
        )


def _sealed(chunks: Iterable[bytes], sealer: Sealer) -> Iterator[bytes]:
    for chunk in chunks:
        for piece in sealer.update_segments(chunk):
            yield bytes(piece)
    for piece in sealer.finalize_segments():
        yield bytes(piece)
